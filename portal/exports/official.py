"""Meeting documents in the layout of Chinese official documents, and calendar files.

The Word documents follow GB/T 9704-2012 (党政机关公文格式):

* A4 paper, text block 156 mm × 225 mm: margins top 37 mm, bottom 35 mm,
  left 28 mm, right 26 mm; 22 lines of 28 characters. 28 characters of 三号
  at 16 pt would need 158 mm, so text on the grid is condensed by 0.25 pt per
  character (15.75 pt: 28 fit, 29 do not). The document grid is a line grid
  (``w:docGrid type="lines"``, pitch 225 mm / 22 ≈ 28.95 pt) and body
  paragraphs are spaced "exactly" one pitch. A character grid
  (``linesAndChars`` with ``charSpace`` -848, i.e. 15.79 pt) gives 28 in Word
  but LibreOffice gives every 16 pt character two cells of it: 14 characters
  a line, measured with LibreOffice 7.4. Titles, letterhead, page numbers and
  the 版记 are not condensed and do not snap to the grid.
* The letterhead (发文机关标志) 35 mm below the top of the text block, two
  blank lines, the document number and the red rule 4 mm below it, two blank
  lines, the title (7.2, 7.3.1). A title longer than a line breaks at a word
  boundary (jieba) into lines of nearly equal length, one line pitch apart.
* Title 方正小标宋简体 二号 (22 pt) centred; body 仿宋_GB2312 三号 (16 pt),
  first line indented two characters; first-level headings 黑体, second-level
  楷体_GB2312, third-level 仿宋_GB2312 bold, all 三号.
* Page numbers "— 1 —" in 宋体 四号 (14 pt): odd pages on the right, even pages on
  the left, one character in from the edge of the text block.
* Signature block (no seal): the issuing office two characters in from the
  right; the date below it, starting two characters further right. The date
  is placed from the start of the office name (a whole number of grid
  characters), not from an estimate of how wide its digits are.
* The 版记 (7.4) closes the document at the foot of the text block: the
  issuing office one character in from the left, the printing date one
  character in from the right, between two rules.
* Minutes (纪要, 10.3) carry the red 纪要 masthead instead of a letterhead;
  attendance (出席、请假) follows the text, printed once from the sign-in;
  headings are numbered 一、, （一）, 1. whatever the Markdown says.
* Departments are named by their agency at the unit (金水区教育局), as the
  unit's office set them (:func:`portal.models.units.agency_names`).
* Dates are the issue date stored with the meeting (the notice) and the
  publishing date of the minutes, never the day of the download.
Official documents are always Chinese: nothing here depends on the reader's
language. python-docx's ``font.name`` only sets the Latin fonts, so every run
and style also gets ``w:eastAsia`` (and ``w:cs``) set explicitly, and the theme
fonts of python-docx's template are removed so that they cannot win.

Times on meetings are naive Beijing wall-clock times; timestamps such as
``Minutes.published_at`` are naive UTC.
"""
from __future__ import annotations

import io
import itertools
import logging
import re
import unicodedata
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Optional

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Length, Mm, Pt, RGBColor
from icalendar import Alarm, Calendar, Event
from markdown_it import MarkdownIt

from portal.clock import aware_local, to_local
from portal.models.meetings import AttendanceStatus, Meeting, MeetingStatus
from portal.models.units import Department, Unit, agency_names


# --- the GB/T 9704-2012 page ------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = Mm(210), Mm(297)
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT = Mm(37), Mm(35), Mm(28), Mm(26)
CHARS_PER_LINE, LINES_PER_PAGE = 28, 22
#: 225 mm of text block / 22 lines = 28.99 pt; 28.95 pt (579 twentieths of a point) keeps 22 inside.
LINE_PITCH = Pt(28.95)
#: Body text is condensed by 0.25 pt (5 twentieths of a point): 28 × 15.75 pt = 441 pt fits the 442.2 pt
#: (156 mm) line, 29 characters do not, in Word and in LibreOffice alike.
CONDENSE_TWIPS = -5
CHAR_PITCH = Pt(16 + CONDENSE_TWIPS / 20)
#: The page number sits 7 mm below the text block (35 mm from the page edge).
FOOTER_DISTANCE = Mm(22)
TEXT_WIDTH_PT = Mm(156).pt
#: The letterhead's (and the 纪要 masthead's) top edge lies 35 mm below the top of the text block (7.2.2).
LETTERHEAD_DISTANCE = Mm(35)

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING1_FONT = "黑体"
HEADING2_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"

TITLE_SIZE = Pt(22)        # 二号
BODY_SIZE = Pt(16)         # 三号
PAGE_NUMBER_SIZE = Pt(14)  # 四号
COLOPHON_SIZE = Pt(14)     # 四号, the 版记
#: A title line holds at most this many 二号 characters (20 fit in 156 mm; one is kept free).
TITLE_MAX_CHARS = 19
LETTERHEAD_MAX_SIZE = 36   # 小初; shrunk to fit the width of the text block
RED = RGBColor(0xFF, 0x00, 0x00)

STYLE_TITLE = "Official Title"
STYLE_BODY = "Official Body"
STYLE_PLAIN = "Official Body Flush"
STYLE_HEADING = {1: "Official Heading 1", 2: "Official Heading 2", 3: "Official Heading 3"}
STYLE_LETTERHEAD = "Official Letterhead"
STYLE_DOC_NUMBER = "Official Document Number"
STYLE_SIGNATURE = "Official Signature"
STYLE_PAGE_NUMBER = "Official Page Number"
STYLE_COLOPHON = "Official Colophon"

_WEEKDAYS = "一二三四五六日"
_DIGITS = "零一二三四五六七八九"
# Characters XML 1.0 cannot carry: lxml refuses them, so user text loses them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --- helpers: Chinese numerals and dates ------------------------------------------

def chinese_numeral(n: int) -> str:
    """一, 二 … 十, 十一 … 二十, 二十一 … 九十九, 一百, 一百零一 … 九千九百九十九."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("chinese_numeral() needs an int")
    if not 0 <= n < 10_000:
        raise ValueError("chinese_numeral() handles 0 to 9999")
    if n == 0:
        return "零"
    if 10 <= n < 20:  # 十, 十一 … 十九: no leading 一
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            if zero and out:
                out += "零"
            out += _DIGITS[digit] + unit
            zero = False
        else:
            zero = True
    return out


def chinese_date(d: date | datetime) -> str:
    """2026年3月1日: the full year, no leading zeros (GB/T 9704-2012 7.3.5.3)."""
    return f"{d.year}年{d.month}月{d.day}日"


def _clock(dt: datetime) -> str:
    return f"{dt.hour}:{dt.minute:02d}"


def meeting_time_text(meeting: Meeting) -> str:
    """2026年3月20日（星期五）14:30—16:30; a meeting over several days names both."""
    start, end = meeting.starts_at, meeting.ends_at
    text = f"{chinese_date(start)}（星期{_WEEKDAYS[start.weekday()]}）{_clock(start)}"
    if end is not None:
        if end.date() == start.date():
            text += f"—{_clock(end)}"
        else:
            text += f"至{chinese_date(end)}{_clock(end)}"
    return text


def office_name(unit: Unit) -> str:
    """The issuing office: 金水区社区教育办公室."""
    return f"{unit.name}社区教育办公室"






def _clean(text: Optional[str]) -> str:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return _XML_INVALID.sub("", text)


def _width_in_chars(text: str) -> float:
    """Width in em: CJK and full-width characters 1, Latin letters and digits ½."""
    return sum(1.0 if unicodedata.east_asian_width(c) in ("W", "F") else 0.5 for c in text)


def _agencies(unit: Unit):
    """The agency name of a department code at ``unit`` (金水区教育局)."""
    names = agency_names(unit)
    return lambda code: names.get(code, code)


# --- titles: balanced lines, broken between words -----------------------------------

#: Words the segmenter keeps whole in our titles.
_TITLE_WORDS = ("社区教育", "联席会议", "办公室", "成员单位", "全体会议", "工作会议", "推进会", "季度")
#: A line neither starts nor ends next to these: "…联席会议 / 的通知" and "…联席会议的 / 通知" both read badly.
_BINDING = set("的之和与及暨")
_MEASURE = set("年月日号次届期个季")


@lru_cache(maxsize=1)
def _segmenter():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for word in _TITLE_WORDS:
        tokenizer.add_word(word)
    return tokenizer


def _title_words(text: str) -> list[str]:
    """jieba's words, with numbers kept with their measure word (2026年, 第3季度)."""
    words: list[str] = []
    for word in _segmenter().lcut(text, HMM=False):
        if words and (words[-1] == "第" or (words[-1][-1:].isdigit() and word[:1] in _MEASURE)
                      or (words[-1][-1:].isdigit() and word[:1].isdigit())):
            words[-1] += word
        else:
            words.append(word)
    return words


def title_lines(text: str, max_chars: float = TITLE_MAX_CHARS) -> list[str]:
    """A title as the lines it is set in (GB/T 9704-2012 7.3.1): as few lines as fit, broken
    only between words, the lines as nearly equal in length as the words allow, no line
    starting or ending on a binding particle; a tie goes to the shorter first line (梯形)."""
    text = text.strip()
    if _width_in_chars(text) <= max_chars:
        return [text]
    words = _title_words(text)
    bounds = list(itertools.accumulate(_width_in_chars(w) for w in words))
    total = bounds[-1]
    for count in range(2, len(words) + 1):
        best = None
        for cuts in itertools.combinations(range(1, len(words)), count - 1):
            edges = (0,) + cuts + (len(words),)
            widths = [bounds[b - 1] - (bounds[a - 1] if a else 0) for a, b in zip(edges, edges[1:])]
            if max(widths) > max_chars:
                continue
            awkward = sum(words[c - 1][-1] in _BINDING or words[c][0] in _BINDING for c in cuts)
            score = (awkward, max(widths) - min(widths), widths[0])
            if best is None or score < best[0]:
                best = (score, edges)
        if best is not None:
            edges = best[1]
            return ["".join(words[a:b]) for a, b in zip(edges, edges[1:])]
    return [text] if total <= max_chars else [text]  # a single word longer than a line: the reader wraps it


# --- helpers: python-docx ------------------------------------------------------------

def _set_fonts(target, name: str) -> None:
    """Latin, East-Asian and complex-script font of a run or style, theme fonts removed."""
    rpr = target._element.get_or_add_rPr()
    rfonts = rpr.get_or_add_rFonts()
    for attr in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
        rfonts.attrib.pop(qn("w:" + attr), None)
    for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
        rfonts.set(qn("w:" + attr), name)


def _format_font(target, name: str, size: Length, *, bold: Optional[bool] = None,
                 color: Optional[RGBColor] = None) -> None:
    _set_fonts(target, name)
    target.font.size = size
    rpr = target._element.get_or_add_rPr()
    szcs = rpr.find(qn("w:szCs"))
    if szcs is None:
        szcs = OxmlElement("w:szCs")
        rpr.find(qn("w:sz")).addnext(szcs)
    szcs.set(qn("w:val"), str(int(size.pt * 2)))
    if bold is not None:
        target.font.bold = bold
    if color is not None:
        target.font.color.rgb = color


def _set_indent(paragraph_or_style, *, first: float = 0, left: float = 0, right: float = 0,
                em: Length = CHAR_PITCH) -> None:
    """Indents in characters; written both in characters (what Word and WPS use)
    and in points (for readers that ignore the character units)."""
    fmt = paragraph_or_style.paragraph_format
    fmt.first_line_indent = Pt(round(first * em.pt, 2))
    fmt.left_indent = Pt(round(left * em.pt, 2))
    fmt.right_indent = Pt(round(right * em.pt, 2))
    ind = paragraph_or_style._element.get_or_add_pPr().find(qn("w:ind"))
    ind.set(qn("w:leftChars"), str(round(left * 100)))
    ind.set(qn("w:rightChars"), str(round(right * 100)))
    if first >= 0:
        ind.set(qn("w:firstLineChars"), str(round(first * 100)))
        ind.attrib.pop(qn("w:hangingChars"), None)
    else:
        ind.set(qn("w:hangingChars"), str(round(-first * 100)))
        ind.attrib.pop(qn("w:firstLineChars"), None)


def _exact_spacing(paragraph_format, pitch: Length = LINE_PITCH) -> None:
    paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    paragraph_format.line_spacing = pitch
    paragraph_format.space_before = Pt(0)
    paragraph_format.space_after = Pt(0)


def _no_grid(paragraph_or_style) -> None:
    """Off the character grid: text larger or smaller than 三号 keeps its own advance widths
    (a 二号 title would otherwise take two grid cells per character)."""
    ppr = paragraph_or_style._element.get_or_add_pPr()
    snap = ppr.find(qn("w:snapToGrid"))
    if snap is None:
        snap = OxmlElement("w:snapToGrid")
        # snapToGrid comes right after the borders, shading, tabs and hyphenation settings.
        anchor = next((ppr.find(qn(t)) for t in ("w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents",
                                                 "w:suppressOverlap", "w:jc", "w:textDirection",
                                                 "w:textAlignment", "w:textboxTightWrap", "w:outlineLvl",
                                                 "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange")
                       if ppr.find(qn(t)) is not None), None)
        if anchor is not None:
            anchor.addprevious(snap)
        else:
            ppr.append(snap)
    snap.set(qn("w:val"), "0")


def _char_spacing(target, twips: int) -> None:
    """Character spacing (w:spacing in the run properties), in twentieths of a point."""
    rpr = target._element.get_or_add_rPr()
    spacing = rpr.find(qn("w:spacing"))
    if spacing is None:
        spacing = OxmlElement("w:spacing")
        anchor = next((rpr.find(qn(t)) for t in ("w:w", "w:kern", "w:position", "w:sz", "w:szCs", "w:highlight",
                                                 "w:u", "w:effect", "w:bdr", "w:shd", "w:fitText", "w:vertAlign",
                                                 "w:rtl", "w:cs", "w:em", "w:lang", "w:eastAsianLayout")
                       if rpr.find(qn(t)) is not None), None)
        if anchor is not None:
            anchor.addprevious(spacing)
        else:
            rpr.append(spacing)
    spacing.set(qn("w:val"), str(twips))


def _paragraph_style(doc, name: str, font: str, size: Length, *, align=WD_ALIGN_PARAGRAPH.JUSTIFY,
                     first: float = 0, bold: bool = False, outline_level: Optional[int] = None,
                     color: Optional[RGBColor] = None, exact: bool = True, grid: bool = True):
    style = doc.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = doc.styles["Normal"]
    style.quick_style = True
    _format_font(style, font, size, bold=bold, color=color)
    fmt = style.paragraph_format
    fmt.alignment = align
    if exact:
        _exact_spacing(fmt)
    else:
        fmt.line_spacing_rule = WD_LINE_SPACING.SINGLE
        fmt.space_before = fmt.space_after = Pt(0)
    fmt.widow_control = True
    _set_indent(style, first=first)
    if not grid:
        _no_grid(style)
        _char_spacing(style, 0)
    if outline_level is not None:
        fmt.keep_with_next = True
        ppr = style._element.get_or_add_pPr()
        level = OxmlElement("w:outlineLvl")
        level.set(qn("w:val"), str(outline_level))
        ppr.append(level)
    return style


def _new_document(*, title: str, author: str):
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    section.top_margin, section.bottom_margin = MARGIN_TOP, MARGIN_BOTTOM
    section.left_margin, section.right_margin = MARGIN_LEFT, MARGIN_RIGHT
    section.header_distance = Mm(15)
    section.footer_distance = FOOTER_DISTANCE
    section.gutter = Mm(0)
    grid = section._sectPr.find(qn("w:docGrid"))
    if grid is None:
        grid = OxmlElement("w:docGrid")
        section._sectPr.append(grid)
    grid.set(qn("w:type"), "lines")
    grid.set(qn("w:linePitch"), str(round(LINE_PITCH.pt * 20)))

    # Document defaults: no theme fonts, Chinese language, no paragraph spacing.
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    rfonts = rpr.find(qn("w:rFonts"))
    for attr in list(rfonts.attrib):
        del rfonts.attrib[attr]
    for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
        rfonts.set(qn("w:" + attr), BODY_FONT)
    for tag in ("w:sz", "w:szCs"):
        rpr.find(qn(tag)).set(qn("w:val"), str(int(BODY_SIZE.pt * 2)))
    lang = rpr.find(qn("w:lang"))
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    spacing = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr")).find(qn("w:spacing"))
    spacing.set(qn("w:after"), "0")
    spacing.set(qn("w:line"), "240")

    normal = doc.styles["Normal"]
    _format_font(normal, BODY_FONT, BODY_SIZE)
    _char_spacing(normal, CONDENSE_TWIPS)
    _exact_spacing(normal.paragraph_format)

    _paragraph_style(doc, STYLE_TITLE, TITLE_FONT, TITLE_SIZE, align=WD_ALIGN_PARAGRAPH.CENTER,
                     outline_level=None, grid=False)
    doc.styles[STYLE_TITLE].paragraph_format.keep_with_next = True
    _paragraph_style(doc, STYLE_BODY, BODY_FONT, BODY_SIZE, first=2)
    _paragraph_style(doc, STYLE_PLAIN, BODY_FONT, BODY_SIZE)
    _paragraph_style(doc, STYLE_HEADING[1], HEADING1_FONT, BODY_SIZE, first=2, outline_level=0)
    _paragraph_style(doc, STYLE_HEADING[2], HEADING2_FONT, BODY_SIZE, first=2, outline_level=1)
    _paragraph_style(doc, STYLE_HEADING[3], BODY_FONT, BODY_SIZE, first=2, bold=True, outline_level=2)
    _paragraph_style(doc, STYLE_LETTERHEAD, TITLE_FONT, Pt(LETTERHEAD_MAX_SIZE), align=WD_ALIGN_PARAGRAPH.CENTER,
                     color=RED, exact=False, grid=False)
    _paragraph_style(doc, STYLE_DOC_NUMBER, BODY_FONT, BODY_SIZE, align=WD_ALIGN_PARAGRAPH.CENTER)
    _paragraph_style(doc, STYLE_SIGNATURE, BODY_FONT, BODY_SIZE, align=WD_ALIGN_PARAGRAPH.RIGHT)
    _paragraph_style(doc, STYLE_PAGE_NUMBER, PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE, exact=False, grid=False)
    _paragraph_style(doc, STYLE_COLOPHON, BODY_FONT, COLOPHON_SIZE, align=WD_ALIGN_PARAGRAPH.LEFT, grid=False)

    props = doc.core_properties
    props.title = _clean(title)[:255]
    props.author = props.last_modified_by = _clean(author)[:255]
    props.language = "zh-CN"
    props.comments = ""
    props.created = props.modified = datetime.now(timezone.utc).replace(tzinfo=None)
    _page_numbers(doc)
    return doc


def _add_run(paragraph, text: str, font: str, size: Length, *, bold: bool = False,
             color: Optional[RGBColor] = None):
    run = paragraph.add_run(_clean(text))
    _format_font(run, font, size, bold=bold or None, color=color)
    return run


def _add_paragraph(doc, text: str = "", *, style: str = STYLE_BODY, font: str = BODY_FONT,
                   size: Length = BODY_SIZE, bold: bool = False, color: Optional[RGBColor] = None):
    paragraph = doc.add_paragraph(style=style)
    if text:
        _add_run(paragraph, text, font, size, bold=bold, color=color)
    return paragraph


def _blank(doc, lines: int = 1) -> None:
    for _ in range(lines):
        doc.add_paragraph(style=STYLE_BODY)


def _add_field(paragraph, instruction: str, placeholder: str, font: str, size: Length) -> None:
    """A complex field (begin, instruction, separate, cached result, end)."""
    def fld_char(kind: str):
        run = paragraph.add_run()
        _format_font(run, font, size)
        char = OxmlElement("w:fldChar")
        char.set(qn("w:fldCharType"), kind)
        run._r.append(char)

    fld_char("begin")
    run = paragraph.add_run()
    _format_font(run, font, size)
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    run._r.append(instr)
    fld_char("separate")
    _add_run(paragraph, placeholder, font, size)
    fld_char("end")


def _page_numbers(doc) -> None:
    doc.settings.odd_and_even_pages_header_footer = True
    section = doc.sections[0]
    for footer, odd in ((section.footer, True), (section.even_page_footer, False)):
        footer.is_linked_to_previous = False
        paragraph = footer.paragraphs[0]
        paragraph.style = doc.styles[STYLE_PAGE_NUMBER]
        fmt = paragraph.paragraph_format
        fmt.alignment = WD_ALIGN_PARAGRAPH.RIGHT if odd else WD_ALIGN_PARAGRAPH.LEFT
        _set_indent(paragraph, left=0 if odd else 1, right=1 if odd else 0, em=PAGE_NUMBER_SIZE)
        _add_run(paragraph, "— ", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE)
        _add_field(paragraph, "PAGE", "1", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE)
        _add_run(paragraph, " —", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE)


def _bottom_border(paragraph, color: str = "FF0000", size_eighths: int = 12, space_pt: int = 8,
                   *, sides: tuple[str, ...] = ("bottom",)) -> None:
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    for side in sides:  # the schema's order: top, left, bottom, right
        line = OxmlElement("w:" + side)
        line.set(qn("w:val"), "single")
        line.set(qn("w:sz"), str(size_eighths))
        line.set(qn("w:space"), str(space_pt))
        line.set(qn("w:color"), color)
        borders.append(line)
    # pBdr comes before spacing/ind/jc in the schema's sequence.
    anchor = next((ppr.find(qn(t)) for t in ("w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku",
                                            "w:wordWrap", "w:overflowPunct", "w:topLinePunct",
                                            "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi",
                                            "w:adjustRightInd", "w:snapToGrid", "w:spacing", "w:ind",
                                            "w:contextualSpacing", "w:mirrorIndents", "w:suppressOverlap",
                                            "w:jc", "w:textDirection", "w:textAlignment",
                                            "w:textboxTightWrap", "w:outlineLvl", "w:divId", "w:cnfStyle",
                                            "w:rPr", "w:sectPr", "w:pPrChange")
                   if ppr.find(qn(t)) is not None), None)
    if anchor is not None:
        anchor.addprevious(borders)
    else:
        ppr.append(borders)


def _title(doc, text: str) -> None:
    """The title centred in balanced lines, one paragraph with line breaks, one line pitch apart."""
    paragraph = doc.add_paragraph(style=STYLE_TITLE)
    for index, line in enumerate(title_lines(_clean(text))):
        if index:
            _add_run(paragraph, "", TITLE_FONT, TITLE_SIZE).add_break()
        _add_run(paragraph, line, TITLE_FONT, TITLE_SIZE)


def _labelled(doc, label: str, text: str, *, label_font: str = BODY_FONT) -> None:
    """"出席：…" with continuation lines aligned after the colon."""
    paragraph = doc.add_paragraph(style=STYLE_PLAIN)
    width = _width_in_chars(label)
    _set_indent(paragraph, first=-width, left=2 + width)
    _add_run(paragraph, label, label_font, BODY_SIZE)
    _add_run(paragraph, text, BODY_FONT, BODY_SIZE)


#: An undated signature (a notice not issued yet, minutes not published): the clerk writes the date in.
UNDATED = "\u3000\u3000年\u3000月\u3000日"
#: The widest a digit of the date is taken to be, in characters, when deciding whether the date is longer
#: than the office name (digits of CJK fonts are 0.5–0.6 em).
_DIGIT_WIDTH = 0.6


def _signature(doc, office: str, when: Optional[date]) -> None:
    """Issuing office two characters in from the right, the date below it starting
    two characters further right (GB/T 9704-2012 7.3.5.2). The office name is
    Chinese characters, a whole number of grid characters, so the date's start is
    set from the left as a whole number of characters too: the two characters
    hold whatever the digits' widths. A date longer than the office name keeps two
    characters on its right and pushes the office left."""
    date_text = chinese_date(when) if when else UNDATED
    w_office = _width_in_chars(office)
    w_date = sum(1.0 if unicodedata.east_asian_width(c) in ("W", "F") else _DIGIT_WIDTH for c in date_text)
    signed = _add_paragraph(doc, office, style=STYLE_SIGNATURE)
    dated = _add_paragraph(doc, date_text, style=STYLE_SIGNATURE)
    if w_office - 2 >= w_date:
        _set_indent(signed, right=2)
        # The office starts (2 + its width) pitches left of the line's end; the date 2 pitches after that.
        # In points, not characters: a line is 442.2 pt, not 28 pitches of 15.75 pt.
        dated.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.LEFT
        _set_indent(dated)
        dated.paragraph_format.left_indent = Pt(round(TEXT_WIDTH_PT - w_office * CHAR_PITCH.pt, 2))
        dated._p.pPr.find(qn("w:ind")).attrib.pop(qn("w:leftChars"), None)
    else:
        _set_indent(dated, right=2)
        _set_indent(signed, right=2 + w_date + 2 - w_office)


def _head_size(text: str) -> float:
    """小初 (36 pt), or smaller to fit the width of the text block."""
    return min(LETTERHEAD_MAX_SIZE, max(16, int(TEXT_WIDTH_PT / max(_width_in_chars(text), 1) * 2) / 2))


def _red_head(doc, text: str):
    """The letterhead or masthead in red 小标宋, its top edge 35 mm below the top of the text block:
    the line is set exactly as high as the type, so its top is the characters' top."""
    size = _head_size(text)
    head = _add_paragraph(doc, text, style=STYLE_LETTERHEAD, font=TITLE_FONT, size=Pt(size), color=RED)
    fmt = head.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(size * 1.1)
    fmt.space_before = LETTERHEAD_DISTANCE
    return head


def _letterhead(doc, office: str, number: str) -> None:
    """The issuing office in red 小标宋 35 mm below the top of the text block; two
    blank lines, then the document number centred, the red rule 4 mm below it and
    two blank lines before the title (GB/T 9704-2012 7.2)."""
    last = _red_head(doc, office)
    if number:
        _blank(doc, 2)
        last = _add_paragraph(doc, number, style=STYLE_DOC_NUMBER)
    _bottom_border(last, space_pt=4)
    _blank(doc, 2)


def _masthead(doc, masthead: str, office: str, when: Optional[date]) -> None:
    """纪要 (10.3): the masthead "…纪要" in red 小标宋 where a letterhead would be, then the
    office (one character in from the left) and the date (one character in from the right)
    on one line above the red rule, and two blank lines before the title."""
    _red_head(doc, masthead)
    _blank(doc, 2)
    line = doc.add_paragraph(style=STYLE_PLAIN)
    _two_ends(line, office, chinese_date(when) if when else UNDATED, BODY_SIZE, CHAR_PITCH)
    _bottom_border(line, space_pt=4)
    _blank(doc, 2)


def _two_ends(paragraph, left: str, right: str, size: Length, em: Length) -> None:
    """``left`` one character in from the left, ``right`` one character in from the right."""
    _set_indent(paragraph, left=1, right=1, em=em)
    tabs = paragraph.paragraph_format.tab_stops
    from docx.enum.text import WD_TAB_ALIGNMENT

    tabs.add_tab_stop(Pt(TEXT_WIDTH_PT - em.pt), WD_TAB_ALIGNMENT.RIGHT)  # from the margin, as Word measures
    _add_run(paragraph, left, BODY_FONT, size)
    _add_run(paragraph, "\t" + right, BODY_FONT, size)


def _colophon(doc, office: str, printed_on: Optional[date]) -> None:
    """版记 (7.4.3): the printing office one character in from the left and the printing date
    ("…印发") one character in from the right, 四号仿宋, between a thick rule above and one at
    the foot of the text block. A frame anchored to the bottom margin keeps it there on the
    last page, whatever the length of the text above."""
    paragraph = doc.add_paragraph(style=STYLE_COLOPHON)
    printed = (chinese_date(printed_on) if printed_on else UNDATED) + "印发"
    _two_ends(paragraph, office, printed, COLOPHON_SIZE, COLOPHON_SIZE)
    ppr = paragraph._p.get_or_add_pPr()
    frame = OxmlElement("w:framePr")
    for key, value in (("w", str(round(TEXT_WIDTH_PT * 20))), ("hSpace", "0"), ("wrap", "notBeside"),
                       ("hAnchor", "margin"), ("vAnchor", "margin"), ("xAlign", "center"), ("yAlign", "bottom")):
        frame.set(qn("w:" + key), value)
    # framePr follows pStyle, keepNext, keepLines and pageBreakBefore in the schema's order.
    anchor = next((ppr.find(qn(t)) for t in ("w:widowControl", "w:numPr", "w:suppressLineNumbers", "w:pBdr",
                                             "w:shd", "w:tabs", "w:snapToGrid", "w:spacing", "w:ind", "w:jc")
                   if ppr.find(qn(t)) is not None), None)
    if anchor is not None:
        anchor.addprevious(frame)
    else:
        ppr.append(frame)
    _bottom_border(paragraph, color="000000", size_eighths=8, space_pt=1, sides=("top", "bottom"))


def _to_bytes(doc) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


# --- Markdown minutes -> official paragraphs ---------------------------------------

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
_SOFT_BREAK = "\x00"


def _inline_segments(children) -> list[tuple[str, bool]]:
    """Inline tokens as (text, bold) pieces. Markup that has no place in an
    official document (emphasis, links, code) is dropped, its text is kept; a
    link's address follows its text when it differs."""
    segments: list[tuple[str, bool]] = []
    bold = 0
    links: list[tuple[int, str]] = []
    for token in children:
        kind = token.type
        if kind == "strong_open":
            bold += 1
        elif kind == "strong_close":
            bold = max(0, bold - 1)
        elif kind == "softbreak":
            segments.append((_SOFT_BREAK, bold > 0))
        elif kind == "hardbreak":
            segments.append(("\n", bold > 0))
        elif kind == "link_open":
            links.append((len(segments), token.attrGet("href") or ""))
        elif kind == "link_close":
            if links:
                start, href = links.pop()
                label = "".join(text for text, _ in segments[start:])
                if href and href != label and href != "mailto:" + label:
                    segments.append((f"（{href}）", bold > 0))
        elif kind == "image":
            if token.content:
                segments.append((token.content, bold > 0))
        elif kind in ("em_open", "em_close", "s_open", "s_close"):
            continue
        elif token.content:  # text, code_inline, html_inline, anything new
            segments.append((token.content, bold > 0))
    # A soft line break is a space between Latin words, nothing between Chinese characters.
    out: list[tuple[str, bool]] = []
    for index, (text, is_bold) in enumerate(segments):
        if text == _SOFT_BREAK:
            before = out[-1][0][-1:] if out else ""
            after = next((t[:1] for t, _ in segments[index + 1:] if t and t != _SOFT_BREAK), "")
            wide = any(c and unicodedata.east_asian_width(c) in ("W", "F") for c in (before, after))
            text = "" if wide or not before or not after else " "
            if not text:
                continue
        if out and out[-1][1] == is_bold:
            out[-1] = (out[-1][0] + text, is_bold)
        else:
            out.append((text, is_bold))
    return [(text, is_bold) for text, is_bold in out if text]


def markdown_blocks(text: str) -> list[tuple[int, list[tuple[str, bool]]]]:
    """Markdown as blocks (level, [(text, bold)]): level 1-3 for headings
    (a "####" heading counts as 3), 0 for body paragraphs. List items become
    paragraphs ("1." kept for numbered lists), table rows become paragraphs with
    the cells separated by a full-width space, code stays line by line."""
    blocks: list[tuple[int, list[tuple[str, bool]]]] = []
    heading = 0
    lists: list[list] = []  # [ordered, next number, marker]
    prefix: Optional[str] = None
    row: Optional[list[list[tuple[str, bool]]]] = None

    def emit(level: int, segments: list[tuple[str, bool]]) -> None:
        nonlocal prefix
        if prefix and level == 0:
            if segments and not segments[0][1]:
                segments = [(prefix + segments[0][0], False)] + segments[1:]
            else:
                segments = [(prefix, False)] + segments
            prefix = None
        if segments:
            blocks.append((level, segments))

    for token in _markdown.parse(_clean(text)):
        kind = token.type
        if kind == "heading_open":
            heading = min(int(token.tag[1:]), 3)
        elif kind == "heading_close":
            heading = 0
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = token.attrGet("start")
            lists.append([kind == "ordered_list_open", int(start) if start else 1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            if lists:
                lists.pop()
        elif kind == "list_item_open":
            if lists and lists[-1][0]:
                prefix = f"{lists[-1][1]}{token.markup or '.'}"
                lists[-1][1] += 1
            else:
                prefix = None
        elif kind == "list_item_close":
            if prefix:  # an item with no text of its own keeps its number
                blocks.append((0, [(prefix, False)]))
                prefix = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            if row is not None:
                cells = ["".join(t for t, _ in cell) for cell in row]
                if any(cells):
                    emit(0, [("　".join(cells), False)])
            row = None
        elif kind == "inline":
            segments = _inline_segments(token.children or [])
            if row is not None:
                row.append(segments)
            else:
                emit(heading, segments)
        elif kind in ("fence", "code_block"):
            for line in token.content.rstrip("\n").split("\n"):
                if line.strip():
                    emit(0, [(line, False)])
        elif kind == "html_block" and token.content.strip():
            for line in token.content.strip().split("\n"):
                emit(0, [(line, False)])
    return blocks


#: Numbering written by hand in front of a heading: 一、 （一） 1. 1、 (1) 第一部分 is not touched.
_HAND_NUMBER = re.compile(r"^\s*(?:[一二三四五六七八九十百]+[、.．]|[（(][一二三四五六七八九十百\d]+[)）]"
                          r"|\d+(?:[.．]\d+)*(?:[.．、]|\s))\s*")
#: The heading of the attendance section older minutes skeletons wrote; the document prints the sign-in itself.
_ATTENDANCE_HEADINGS = {"出席情况", "attendance", "出席", "参会情况"}


def heading_number(level: int, number: int) -> str:
    """一、 （一） 1. （1）: the four levels of GB/T 9704-2012 7.3.3."""
    if level == 1:
        return f"{chinese_numeral(number)}、"
    if level == 2:
        return f"（{chinese_numeral(number)}）"
    if level == 3:
        return f"{number}."
    return f"（{number}）"


def _add_markdown(doc, text: str, *, skip_leading_titles: Iterable[str] = ()) -> list[int]:
    """The minutes' Markdown as official paragraphs; returns the heading counters so that
    the decisions continue the numbering. The shallowest heading level present becomes
    一、, the next （一）, then 1.; numbers typed by hand are replaced."""
    skip = {t.strip() for t in skip_leading_titles if t}
    blocks = markdown_blocks(text)
    # The minutes skeleton starts with "# <meeting title>": the document title says that already.
    if blocks and blocks[0][0] and "".join(t for t, _ in blocks[0][1]).strip() in skip:
        blocks = blocks[1:]
    # Older skeletons copied the sign-in under 出席情况: the document prints it once, after the text.
    kept, dropping = [], 0
    for level, segments in blocks:
        plain = "".join(t for t, _ in segments).strip()
        if level and dropping and level <= dropping:
            dropping = 0
        if level and _HAND_NUMBER.sub("", plain).strip().lower() in _ATTENDANCE_HEADINGS:
            dropping = level
            continue
        if not dropping:
            kept.append((level, segments))
    levels = sorted({level for level, _ in kept if level})
    counters = [0, 0, 0]
    for level, segments in kept:
        if level == 0:
            paragraph = doc.add_paragraph(style=STYLE_BODY)
            for text_part, bold in segments:
                _add_run(paragraph, text_part, BODY_FONT, BODY_SIZE, bold=bold)
            continue
        depth = min(levels.index(level) + 1, 3)
        counters[depth - 1] += 1
        counters[depth:] = [0] * (3 - depth)
        heading = _HAND_NUMBER.sub("", "".join(t for t, _ in segments), count=1).strip()
        font = {1: HEADING1_FONT, 2: HEADING2_FONT, 3: BODY_FONT}[depth]
        paragraph = doc.add_paragraph(style=STYLE_HEADING[depth])
        _add_run(paragraph, heading_number(depth, counters[depth - 1]) + heading, font, BODY_SIZE,
                 bold=depth == 3)
    return counters


# --- the documents ------------------------------------------------------------------------

def _agenda_line(number: int, item, agency) -> str:
    text = f"{chinese_numeral(number)}、{item.title}"
    if item.department_code:
        text += f"（汇报单位：{agency(item.department_code)}）"
    return text


def _invited_offices(meeting: Meeting) -> list[str]:
    return [office_name(inv.unit) for inv in meeting.unit_invitations]


def notice_docx(meeting: Meeting, *, issued_on: Optional[date] = None) -> bytes:
    """会议通知: letterhead, document number, title, addressees (the agencies at the
    unit and the offices of invited units), time, place, participants and the agenda,
    signed by the office, dated the day the notice was issued (``issued_on`` overrides
    it; a notice not issued yet leaves the date for the clerk), and the 版记."""
    office = office_name(meeting.unit)
    agency = _agencies(meeting.unit)
    issued_on = issued_on or meeting.notice_issued_on
    title = f"关于召开{meeting.title}的通知"
    doc = _new_document(title=title, author=office)
    _letterhead(doc, office, _clean(meeting.notice_number).strip())
    _title(doc, title)
    _blank(doc)

    codes = meeting.invited_department_codes
    departments = [agency(code) for code in codes]
    addressees = departments + _invited_offices(meeting)
    if addressees:
        _add_paragraph(doc, "、".join(addressees) + "：", style=STYLE_PLAIN)

    when = meeting_time_text(meeting)
    where = (meeting.location or "").strip()
    opening = f"经研究，定于{chinese_date(meeting.starts_at)}" + (f"在{where}" if where else "")
    _add_paragraph(doc, f"{opening}召开{meeting.title}。现将有关事项通知如下：")
    _add_paragraph(doc, f"会议时间：{when}")
    if where:
        _add_paragraph(doc, f"会议地点：{where}")
    participants = []
    if departments:
        everyone = set(codes) >= {d.code for d in Department.all()}
        participants.append(("各成员单位" if everyone else "、".join(departments)) + "负责同志及联络员")
    if meeting.unit_invitations:
        participants.append("、".join(_invited_offices(meeting)) + "负责同志")
    if participants:
        _add_paragraph(doc, "参会人员：" + "；".join(participants))
    agenda = meeting.agenda
    if agenda:
        _add_paragraph(doc, "会议议程：")
        for number, item in enumerate(agenda, start=1):
            _add_paragraph(doc, _agenda_line(number, item, agency))
    else:
        _add_paragraph(doc, "会议议程：另行通知。")
    _add_paragraph(doc, "特此通知。")
    _blank(doc)
    _signature(doc, office, issued_on)
    _colophon(doc, office, issued_on)
    return _to_bytes(doc)


def _attendance_lines(meeting: Meeting, agency) -> tuple[list[str], list[str]]:
    present, absent = [], []
    for row in meeting.attendance:
        name = agency(row.department_code)
        if row.status == AttendanceStatus.PRESENT.value:
            present.append(f"{name}（{row.attendee_name}）" if row.attendee_name else name)
        elif row.status == AttendanceStatus.DELEGATE.value:
            present.append(f"{name}（委托{row.delegate_name}代为出席）")
        else:
            absent.append(f"{name}（{row.reason}）" if row.reason else name)
    return present, absent


def minutes_masthead(unit: Unit) -> str:
    """The 纪要 masthead: 金水区社区教育联席会议纪要."""
    return f"{unit.name}社区教育联席会议纪要"


def minutes_docx(meeting: Meeting, *, issued_on: Optional[date] = None) -> bytes:
    """会议纪要 (10.3): the red masthead with the office and the publishing date above the
    rule, the meeting's title, time and place, the minutes (Markdown, headings numbered),
    the decisions (议定事项) continuing the numbering, then attendance (出席、请假) from the
    sign-in and the 版记. Dated the day the minutes were published (in Beijing); draft
    minutes carry ``issued_on`` if given, else no date."""
    office = office_name(meeting.unit)
    agency = _agencies(meeting.unit)
    minutes = meeting.minutes
    if minutes is not None and minutes.published_at is not None:
        when: Optional[date] = to_local(minutes.published_at).date()
    else:
        when = issued_on
    doc = _new_document(title=f"{meeting.title}纪要", author=office)
    _masthead(doc, minutes_masthead(meeting.unit), office, when)
    _title(doc, meeting.title)
    _blank(doc)

    _add_paragraph(doc, f"时间：{meeting_time_text(meeting)}")
    if (meeting.location or "").strip():
        _add_paragraph(doc, f"地点：{meeting.location.strip()}")

    counters = [0, 0, 0]
    if minutes is not None and minutes.body:
        counters = _add_markdown(doc, minutes.body,
                                 skip_leading_titles=(meeting.title, f"{meeting.title}纪要"))

    if meeting.decisions:
        heading = heading_number(1, counters[0] + 1) + "议定事项"
        _add_paragraph(doc, heading, style=STYLE_HEADING[1], font=HEADING1_FONT)
        for number, decision in enumerate(meeting.decisions, start=1):
            lines = [line.strip() for line in _clean(decision.text).split("\n") if line.strip()] or [""]
            _add_paragraph(doc, f"{heading_number(2, number)}{lines[0]}")
            for line in lines[1:]:
                _add_paragraph(doc, line)
            details = [f"牵头单位：{agency(decision.lead_department_code)}"]
            co = [agency(code) for code in decision.co_department_codes or []]
            if co:
                details.append("配合单位：" + "、".join(co))
            if decision.due_date:
                details.append(f"完成时限：{chinese_date(decision.due_date)}")
            _add_paragraph(doc, "（" + "；".join(details) + "）")

    present, absent = _attendance_lines(meeting, agency)
    if present or absent:
        _blank(doc)
    if present:
        _labelled(doc, "出席：", "、".join(present), label_font=HEADING1_FONT)
    if absent:
        _labelled(doc, "请假：", "、".join(absent), label_font=HEADING1_FONT)
    _colophon(doc, office, when)
    return _to_bytes(doc)


# --- calendar -----------------------------------------------------------------------------

PRODID = "-//Community education portal//Joint meetings//ZH"


def ics(meeting: Meeting) -> bytes:
    """The meeting as an iCalendar file: one VEVENT in Asia/Shanghai time with
    the agenda in its description and a reminder one day before. The UID is the
    UUID stored with the meeting (the same whatever name the portal is reached
    by); SEQUENCE is raised whenever what the entry shows changes, so calendars
    take an update as such."""
    cancelled = meeting.status == MeetingStatus.CANCELLED.value
    agency = _agencies(meeting.unit)

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")

    start = aware_local(meeting.starts_at)
    end = aware_local(meeting.ends_at) if meeting.ends_at else start + timedelta(hours=2)
    title = _clean(meeting.title)

    description = []
    if cancelled:
        reason = _clean(meeting.cancel_reason).strip()
        description.append("会议已取消" + (f"：{reason}" if reason else "。"))
    description.append(f"召集单位：{office_name(meeting.unit)}")
    if meeting.notice_number:
        description.append(f"文号：{_clean(meeting.notice_number)}")
    agenda = meeting.agenda
    if agenda:
        description.append("会议议程：")
        description += [_clean(_agenda_line(n, item, agency)) for n, item in enumerate(agenda, start=1)]

    event = Event()
    event.add("uid", meeting.uid)
    event.add("dtstamp", datetime.now(timezone.utc))
    event.add("sequence", meeting.calendar_sequence or 0)
    event.add("summary", title)
    if (meeting.location or "").strip():
        event.add("location", _clean(meeting.location).strip())
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("description", "\n".join(description))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")

    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"明天{_clock(meeting.starts_at)}：{title}")
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)

    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
