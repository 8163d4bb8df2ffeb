"""The official documents as a clerk sees them: the demo meetings' notice and minutes
rendered to PDF by LibreOffice (``soffice --headless``, Debian's package, installed by
``make test``), read back as text boxes with pdfminer.six and measured against
GB/T 9704-2012: characters per line, lines per page, where titles break, the
letterhead's distance, the signature date's offset, the 版记.

The installed CJK font stands in for 仿宋/小标宋, so widths are measured on the
render (the pitch of a full line), never assumed. The documents are converted once
for the module."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import date

import pytest

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None,
                                reason="LibreOffice (soffice) is not installed: run make test")

MM = 72 / 25.4
PAGE_HEIGHT = 297 * MM
LEFT, RIGHT, TOP, BOTTOM = 28 * MM, (210 - 26) * MM, 37 * MM, (297 - 35) * MM  # the text block, from the top
PITCH = 28.95  # pt


@dataclass
class Char:
    text: str
    x0: float
    x1: float
    top: float      # from the top of the page
    bottom: float
    size: float
    red: bool


@dataclass
class Line:
    chars: list[Char]

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chars).replace(" ", "")

    @property
    def size(self) -> float:
        return max(c.size for c in self.chars)

    @property
    def baseline(self) -> float:
        return max(c.bottom for c in self.chars)


def _pages(pdf_path) -> list[list[Line]]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar

    def walk(obj):
        for child in obj:
            if isinstance(child, LTChar):
                yield child
            elif hasattr(child, "__iter__"):
                yield from walk(child)

    pages = []
    for page in extract_pages(pdf_path, laparams=LAParams(char_margin=50, line_margin=0.1)):
        chars = []
        for c in walk(page):
            color = c.graphicstate.ncolor
            red = isinstance(color, (tuple, list)) and len(color) == 3 and color[0] > 0.9 and color[1] < 0.2
            chars.append(Char(c.get_text(), c.x0, c.x1, page.height - c.y1, page.height - c.y0, round(c.size, 1), red))
        chars.sort(key=lambda c: (round(c.bottom), c.x0))
        lines: list[Line] = []
        for c in chars:
            if lines and abs(lines[-1].chars[-1].bottom - c.bottom) < 3:
                lines[-1].chars.append(c)
            else:
                lines.append(Line([c]))
        for line in lines:
            line.chars.sort(key=lambda c: c.x0)
        pages.append([line for line in lines if line.text])
    return pages


def _is_wide(ch: str) -> bool:
    import unicodedata
    return unicodedata.east_asian_width(ch) in ("W", "F")


@pytest.fixture(scope="module")
def documents(app, tmp_path_factory):
    """The demo's meetings (金水区 and 郑州市, held with published minutes; 金水区's next one with
    its agenda open), built by the demo seed in a transaction that is rolled back, plus minutes
    long enough to fill a page; every document converted in one LibreOffice run."""
    from portal.exports.official import minutes_docx, notice_docx, title_lines
    from portal.extensions import db
    from portal.models import Department, Meeting, Membership, Role, Unit, User
    from portal.services import meetings as svc
    from portal.services.demo import seed_meetings

    out = tmp_path_factory.mktemp("official")
    made = {}
    with app.app_context():
        try:
            def unit(code, name, tier, parent=None):
                u = Unit(code=code, name=name, tier=tier, parent_id=parent.id if parent else None,
                         path=(parent.path if parent else "/") + code + "/")
                db.session.add(u)
                db.session.flush()
                return u

            def user(name, at, role, department=None):
                u = User(username=name, display_name=name, active=True, home_unit_id=at.id)
                u.set_password("pdf-test-password-1")
                db.session.add(u)
                db.session.flush()
                db.session.add(Membership(user_id=u.id, unit_id=at.id, role=role.value, department_code=department))

            province = unit("41", "河南省", "province")
            city = unit("4101", "郑州市", "city", province)
            district = unit("410105", "金水区", "district", city)
            unit("410105001", "经八路街道", "street", district)
            unit("410105002", "花园路街道", "street", district)
            for at in (city, district):
                user(f"office-{at.code}", at, Role.OFFICE_ADMIN)
                for department in Department.all():
                    user(f"{department.code}-{at.code}", at, Role.LIAISON, department.code)
            db.session.flush()
            seed_meetings(today=date(2026, 11, 30))
            for meeting in db.session.query(Meeting).order_by(Meeting.id):
                key = f"{meeting.unit.code}-{meeting.status}"
                made[f"notice-{key}"] = (notice_docx(meeting), f"关于召开{meeting.title}的通知", meeting)
                if meeting.minutes is not None:
                    made[f"minutes-{key}"] = (minutes_docx(meeting), meeting.title, meeting)
            # Long minutes: a full middle page.
            long = db.session.query(Meeting).filter_by(status="minutes_published").first()
            long.minutes.body = "## 议题讨论\n\n" + "\n\n".join(
                f"会议听取了第{n}项工作的汇报，认为各成员单位要加强协调配合，形成工作合力，推动社区教育高质量发展。"
                for n in range(1, 61))
            made["minutes-long"] = (minutes_docx(long), long.title, long)
            expected = {name: (title_lines(title), meeting.notice_issued_on, meeting.minutes.published_at
                               if meeting.minutes else None)
                        for name, (_, title, meeting) in made.items()}
        finally:
            db.session.rollback()
            db.session.remove()
    for name, (data, _, _) in made.items():
        (out / f"{name}.docx").write_bytes(data)
    subprocess.run(["soffice", f"-env:UserInstallation=file://{out}/profile", "--headless", "--convert-to", "pdf",
                    "--outdir", str(out)] + sorted(str(p) for p in out.glob("*.docx")),
                   check=True, capture_output=True, timeout=240)
    return {name: (_pages(out / f"{name}.pdf"), expected[name]) for name in made}


def _body_lines(pages):
    return [line for page in pages for line in page if abs(line.size - 16) < 0.6]


def _published(name: str) -> bool:
    return "minutes_published" in name


def test_the_demo_documents_are_there(documents):
    assert {"notice-410105-minutes_published", "minutes-410105-minutes_published", "notice-4101-minutes_published",
            "minutes-4101-minutes_published", "notice-410105-agenda_open", "minutes-long"} == set(documents)


def test_full_lines_hold_28_characters(documents):
    """A full line of body text (running to the right edge of the text block, not a paragraph's last)
    holds 28 characters: counted on the render, with the pitch measured there."""
    counted = 0
    for name, (pages, _) in documents.items():
        full = [line for line in _body_lines(pages) if line.chars[0].x0 < LEFT + 2 and line.chars[-1].x1 > RIGHT - 3]
        assert full, name
        body = _body_lines(pages)
        following = {id(line): nxt for line, nxt in zip(body, body[1:])}
        for line in full:
            wide = [c for c in line.chars if _is_wide(c.text)]
            assert len(wide) <= 28, (name, line.text)
            nxt = following.get(id(line))
            if len(wide) == len(line.chars) and not (nxt and not _is_wide(nxt.chars[0].text)):
                # Chinese only, and the next line does not start with a number that could not be split: 28
                assert len(line.chars) == 28, (name, line.text, len(line.chars))
                pitch = (line.chars[-1].x0 - line.chars[0].x0) / 27
                assert abs(pitch * 28 - (RIGHT - LEFT)) < 2, (name, pitch)
                counted += 1
    assert counted >= 10


def test_a_full_page_holds_22_lines_one_pitch_apart(documents):
    pages, _ = documents["minutes-long"]
    assert len(pages) >= 3
    middle = [line for line in pages[1] if abs(line.size - 16) < 0.6]
    assert len(middle) == 22, [line.text for line in middle]
    gaps = {round(b.baseline - a.baseline, 1) for a, b in zip(middle, middle[1:])}
    assert all(abs(gap - PITCH) < 0.3 for gap in gaps), gaps
    assert middle[0].baseline - TOP < PITCH and BOTTOM - middle[-1].baseline < PITCH / 2


def test_titles_break_between_words_into_balanced_lines_one_pitch_apart(documents):
    for name, (pages, (lines, _, _)) in documents.items():
        title = [line for line in pages[0] if abs(line.size - 22) < 0.6]
        assert [line.text for line in title] == lines, name
        if len(title) > 1:
            widths = [line.chars[-1].x1 - line.chars[0].x0 for line in title]
            assert max(widths) - min(widths) < 4 * 22, (name, widths)
            assert abs(title[1].baseline - title[0].baseline - PITCH) < 0.5, name
    # The demo notice: 「关于召开金水区2026年第3季度 / 社区教育联席会议的通知」
    assert documents["notice-410105-minutes_published"][1][0] == ["关于召开金水区2026年第3季度", "社区教育联席会议的通知"]


def test_letterhead_then_two_blank_lines_then_the_number(documents):
    for name, (pages, _) in documents.items():
        head = next(line for line in pages[0] if line.chars[0].red)
        # The top edge of the letterhead (or the 纪要 masthead) 35 mm below the top of the text block.
        top = min(c.top for c in head.chars)
        assert abs(top - (TOP + 35 * MM)) < 3 * MM, (name, (top - TOP) / MM)
        after = pages[0][pages[0].index(head) + 1]
        if name.startswith("notice") and abs(after.size - 22) > 0.6:  # the upcoming meeting has no number
            assert after.text.endswith("号"), after.text
        # Two blank lines between: the next line's baseline is three pitches below the head's bottom.
        gap = after.baseline - head.baseline
        assert 2.5 * PITCH < gap < 3.6 * PITCH, (name, gap / PITCH)


def test_the_signature_date_starts_two_characters_right_of_the_office(documents):
    for name, (pages, (_, issued, _)) in documents.items():
        if not name.startswith("notice"):
            continue
        lines = [line for page in pages for line in page if abs(line.size - 16) < 0.6]
        office, dated = lines[-2], lines[-1]
        assert office.text == "金水区社区教育办公室" or office.text == "郑州市社区教育办公室", office.text
        pitch = (office.chars[-1].x0 - office.chars[0].x0) / (len(office.chars) - 1)
        offset = dated.chars[0].x0 - office.chars[0].x0
        assert abs(offset - 2 * pitch) < 1.0, (name, offset / pitch)
        assert abs(RIGHT - office.chars[-1].x1 - 2 * pitch) < 1.5, name
        if issued is not None:
            assert dated.text == f"{issued.year}年{issued.month}月{issued.day}日"


def test_the_colophon_closes_the_last_page(documents):
    for name, (pages, (_, issued, published)) in documents.items():
        last = [line for line in pages[-1] if abs(line.size - 14) < 0.6 and "印发" in line.text]
        assert len(last) == 1, name
        line = last[0]
        assert BOTTOM - line.baseline < PITCH, (name, (BOTTOM - line.baseline) / MM)
        assert abs(line.chars[0].x0 - (LEFT + 14)) < 2 and abs(RIGHT - 14 - line.chars[-1].x1) < 2, name
        assert line.text.endswith("印发")


def test_minutes_print_attendance_once_with_numbered_headings(documents):
    pages, _ = documents["minutes-410105-minutes_published"]
    text = "\n".join(line.text for page in pages for line in page)
    assert text.count("出席：") == 1 and "出席情况" not in text and "present" not in text
    assert "请假：金水区农业农村局（另有公务）、金水区公安局（另有公务）" in text.replace("\n", "")
    assert "一、议题讨论" in text and "（一）推进社区学校标准化建设" in text and "二、议定事项" in text
    assert "会议听取了金水区教育局的汇报" in text
    head = next(line for line in pages[0] if line.chars[0].red)
    assert head.text == "金水区社区教育联席会议纪要"
