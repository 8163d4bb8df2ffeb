"""The briefing (工作简报) of a unit for a period, as a Word document in the official layout.

The layout is that of the minutes (:mod:`portal.exports.official`, GB/T 9704-2012): the red
masthead "…社区教育工作简报", the issue number (第N期) below it, the issuing office and the
issue date above the red rule, the title, then the sections, numbered 一、二、…:

一、主要指标: the key figures of the consolidated view for the period, read from the stored
   roll-ups and formatted as the view shows them, with the previous period's and the change;
二、各<children>情况: the ranking of the units below (by completion rate, as the view sorts it);
三、进步较快和逾期较多的单位: the units below whose reporting rate rose most against the
   previous period, and those with the most overdue tasks;
四、会议议定事项: the decisions of the unit's joint meetings held in the period;
五、工作动态: the latest reports of the period with a narrative on accepted tasks below.

Everything is Chinese, whatever the reader's language: an official document. :func:`content`
gathers the figures (a test compares them with a recomputation), :func:`briefing_docx` lays
them out.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from flask_babel import force_locale
from sqlalchemy import select, true

from portal import consolidated as cv
from portal.clock import local_zone, to_local
from portal.exports import official as o
from portal.extensions import db
from portal.models import Briefing, Decision, Meeting, MeetingStatus, Task, TaskReport, Unit
from portal.models.tasks import TaskStatus

#: The key figures of the consolidated view, in its order.
KEY_FIGURES = [key for key, _indicator, _lower in cv.KEY_FIGURES]
#: The ranking's columns in the briefing (a portrait page holds seven).
RANKING_COLUMNS = ("completion_rate", "on_time_rate", "progress", "reporting_rate", "tasks.overdue")
#: How many units the "most improved" and "most overdue" lists name, and how many reports.
TOP = 3
REPORTS = 5
NARRATIVE_CHARS = 200
CHILDREN_NOUN = {"city": "各市", "district": "各县（市、区）", "street": "各街道（乡镇）"}
TABLE_SIZE = Pt(12)  # 小四
STYLE_TABLE = "Official Table"


def masthead(unit: Unit) -> str:
    """金水区社区教育工作简报"""
    return f"{unit.name}社区教育工作简报"


def title(unit: Unit, period: str) -> str:
    with force_locale("zh_Hans_CN"):
        return f"{unit.name}{cv.period_label(period)}社区教育工作情况"


def _figure(key: str, value) -> str:
    from portal.blueprints.dashboard.routes import format_figure

    return format_figure(key, value)


def _change(key: str, now, before) -> str:
    if now is None or before is None:
        return "—"
    delta = Decimal(str(now)) - Decimal(str(before))
    if delta == 0:
        return "持平"
    if cv.is_indicator(key):
        return f"{'上升' if delta > 0 else '下降'}{abs(delta):.1f}个百分点"
    return f"{'增加' if delta > 0 else '减少'}{abs(delta).normalize():,f}"


def _bounds(period: str) -> tuple[datetime, datetime]:
    """The period's first moment and the first moment after it, as naive local wall-clock times."""
    from portal.metrics import months_of

    months = months_of(period)
    start = datetime.strptime(months[0], "%Y-%m")
    year, month = int(months[-1][:4]), int(months[-1][5:7])
    end = datetime(year + month // 12, month % 12 + 1, 1)
    return start, end


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=local_zone()).astimezone(timezone.utc).replace(tzinfo=None)


def content(briefing: Briefing) -> dict:
    """What the briefing says, as data: the stored figures the consolidated view shows."""
    unit, period = briefing.unit, briefing.period
    previous_period = cv.previous_period(period)
    with force_locale("zh_Hans_CN"):
        labels = {key: cv.label(key) for key in (*KEY_FIGURES, *RANKING_COLUMNS)}
        period_label = cv.period_label(period)
        previous_label = cv.period_label(previous_period)
    figures = cv.read_one(unit, period)
    previous = cv.read_one(unit, previous_period)
    key_figures = [{"key": key, "label": labels[key], "value": figures.value(key), "previous": previous.value(key),
                    "text": _figure(key, figures.value(key)), "previous_text": _figure(key, previous.value(key)),
                    "change": _change(key, figures.value(key), previous.value(key))} for key in KEY_FIGURES]

    children = cv.children_of(unit, true())
    ranking = cv.ranking(children, period, "completion_rate", True)
    before = cv.read_many(children, previous_period)
    rows = [{"code": f.unit.code, "name": f.unit.name, "values": {k: f.value(k) for k in RANKING_COLUMNS},
             "texts": {k: _figure(k, f.value(k)) for k in RANKING_COLUMNS}} for f in ranking]

    improved = []
    for f in ranking:
        now, then = f.value("reporting_rate"), before[f.unit.id].value("reporting_rate")
        if now is not None and then is not None and now > then:
            improved.append({"code": f.unit.code, "name": f.unit.name, "from": then, "to": now,
                             "rise": float(Decimal(str(now)) - Decimal(str(then)))})
    improved.sort(key=lambda r: (-r["rise"], r["code"]))
    overdue = sorted(({"code": f.unit.code, "name": f.unit.name, "overdue": f.value("tasks.overdue"),
                       "total": f.value("tasks.total")} for f in ranking if f.value("tasks.overdue")),
                     key=lambda r: (-r["overdue"], r["code"]))

    start, end = _bounds(period)
    decisions = []
    for decision, meeting in db.session.execute(
            select(Decision, Meeting).join(Meeting, Meeting.id == Decision.meeting_id)
            .where(Meeting.unit_id == unit.id, Meeting.starts_at >= start, Meeting.starts_at < end,
                   Meeting.status.in_((MeetingStatus.HELD.value, MeetingStatus.MINUTES_PUBLISHED.value)))
            .order_by(Meeting.starts_at, Meeting.id, Decision.position, Decision.id)).all():
        decisions.append({"meeting": meeting.title, "date": meeting.starts_at.date(), "text": decision.text,
                          "lead": decision.lead_department_code, "co": list(decision.co_department_codes or []),
                          "due": decision.due_date})

    reports, seen = [], set()
    for report, task, task_unit in db.session.execute(
            select(TaskReport, Task, Unit).join(Task, Task.id == TaskReport.task_id).join(Unit, Unit.id == Task.unit_id)
            .where(Unit.subtree_clause(unit), Task.status == TaskStatus.ACCEPTED.value, TaskReport.narrative != "",
                   TaskReport.at >= _utc(start), TaskReport.at < _utc(end))
            .order_by(TaskReport.at.desc(), TaskReport.id.desc()).limit(50)).all():
        if task.id in seen or not report.narrative.strip():
            continue
        seen.add(task.id)
        reports.append({"unit": task_unit.name, "task": task.title, "narrative": report.narrative.strip(),
                        "at": to_local(report.at).date()})
        if len(reports) == REPORTS:
            break

    return {"unit": unit, "period": period, "period_label": period_label, "previous_label": previous_label,
            "computed_at": figures.computed_at, "stale": figures.stale, "key_figures": key_figures,
            "children_noun": CHILDREN_NOUN.get(children[0].tier if children else "", "各下级单位"),
            "ranking": rows, "ranking_labels": [labels[k] for k in RANKING_COLUMNS],
            "improved": improved[:TOP], "overdue": overdue[:TOP], "decisions": decisions, "reports": reports}


# --- layout -----------------------------------------------------------------------------------------

def _cell(cell, text: str, *, bold: bool = False, align=WD_ALIGN_PARAGRAPH.CENTER) -> None:
    paragraph = cell.paragraphs[0]
    paragraph.style = paragraph.part.document.styles[STYLE_TABLE]
    paragraph.paragraph_format.alignment = align
    o._add_run(paragraph, text, o.HEADING1_FONT if bold else o.BODY_FONT, TABLE_SIZE)


def _table(doc, header: list[str], rows: list[list[str]], *, first_left: int = 1) -> None:
    table = doc.add_table(rows=1 + len(rows), cols=len(header))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for index, text in enumerate(header):
        _cell(table.rows[0].cells[index], text, bold=True)
    for r, values in enumerate(rows, start=1):
        for index, text in enumerate(values):
            _cell(table.rows[r].cells[index], text,
                  align=WD_ALIGN_PARAGRAPH.LEFT if index == first_left else WD_ALIGN_PARAGRAPH.CENTER)


def _heading(doc, number: int, text: str) -> None:
    o._add_paragraph(doc, o.heading_number(1, number) + text, style=o.STYLE_HEADING[1], font=o.HEADING1_FONT)


def _computed_text(at, stale: bool = False) -> str:
    if at is None:
        return "（数据尚未统计）"
    local = to_local(at)
    note = "，部分数据正在更新" if stale else ""
    return f"（数据统计时间：{o.chinese_date(local)}{local.hour}:{local.minute:02d}{note}）"


def briefing_docx(briefing: Briefing, data: Optional[dict] = None) -> bytes:
    data = data or content(briefing)
    unit = briefing.unit
    office = o.office_name(unit)
    issued_on = to_local(briefing.created_at).date()
    doc = o._new_document(title=title(unit, briefing.period), author=office)
    o._paragraph_style(doc, STYLE_TABLE, o.BODY_FONT, TABLE_SIZE, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False,
                       grid=False)

    # The masthead, the issue number, the office and the date above the red rule.
    o._red_head(doc, masthead(unit))
    o._blank(doc)
    o._add_paragraph(doc, f"第{briefing.number}期", style=o.STYLE_DOC_NUMBER)
    line = doc.add_paragraph(style=o.STYLE_PLAIN)
    o._two_ends(line, office, o.chinese_date(issued_on), o.BODY_SIZE, o.CHAR_PITCH)
    o._bottom_border(line, space_pt=4)
    o._blank(doc)
    o._title(doc, title(unit, briefing.period))
    o._blank(doc)

    section = 1
    _heading(doc, section, "主要指标")
    o._add_paragraph(doc, f"{data['period_label']}，{unit.name}社区教育主要指标如下"
                          f"{_computed_text(data['computed_at'], data['stale'])}：")
    _table(doc, ["指标", data["period_label"], data["previous_label"], "变化"],
           [[f["label"], f["text"], f["previous_text"], f["change"]] for f in data["key_figures"]], first_left=0)

    if data["ranking"]:
        section += 1
        _heading(doc, section, f"{data['children_noun']}情况")
        o._add_paragraph(doc, f"{data['children_noun']}按任务完成率排列如下：")
        _table(doc, ["序号", "单位", *data["ranking_labels"]],
               [[str(n), row["name"], *row["texts"].values()] for n, row in enumerate(data["ranking"], start=1)])

        section += 1
        _heading(doc, section, "进步较快和逾期较多的单位")
        if data["improved"]:
            names = "；".join(f"{r['name']}（由{_figure('reporting_rate', r['from'])}升至"
                             f"{_figure('reporting_rate', r['to'])}，提高{r['rise']:.1f}个百分点）"
                             for r in data["improved"])
            o._add_paragraph(doc, f"（一）进步较快。与{data['previous_label']}相比，报送率提高较多的是：{names}。")
        else:
            o._add_paragraph(doc, f"（一）进步较快。与{data['previous_label']}相比，报送率均未提高。")
        if data["overdue"]:
            names = "；".join(f"{r['name']}（逾期任务{r['overdue']}项，共{r['total']}项）" for r in data["overdue"])
            o._add_paragraph(doc, f"（二）逾期较多。逾期任务较多的是：{names}。请抓紧推进。")
        else:
            o._add_paragraph(doc, f"（二）逾期较多。{data['children_noun']}目前没有逾期任务。")

    agency = o._agencies(unit)
    section += 1
    _heading(doc, section, "会议议定事项")
    if data["decisions"]:
        for number, d in enumerate(data["decisions"], start=1):
            details = [f"牵头单位：{agency(d['lead'])}"]
            if d["co"]:
                details.append("配合单位：" + "、".join(agency(c) for c in d["co"]))
            if d["due"]:
                details.append(f"完成时限：{o.chinese_date(d['due'])}")
            o._add_paragraph(doc, f"{o.heading_number(2, number)}{d['meeting']}（{o.chinese_date(d['date'])}）："
                                  f"{' '.join(d['text'].split())}（{'；'.join(details)}）")
    else:
        o._add_paragraph(doc, f"{data['period_label']}，{unit.name}联席会议无议定事项。")

    section += 1
    _heading(doc, section, "工作动态")
    if data["reports"]:
        for number, r in enumerate(data["reports"], start=1):
            narrative = " ".join(r["narrative"].split())
            if len(narrative) > NARRATIVE_CHARS:
                narrative = narrative[:NARRATIVE_CHARS] + "……"
            elif narrative[-1] not in "。！？…；.!?":
                narrative += "。"
            o._add_paragraph(doc, f"{o.heading_number(2, number)}{r['unit']}：{r['task']}。{narrative}")
    else:
        o._add_paragraph(doc, f"{data['period_label']}暂无已验收任务的进展报告。")

    o._colophon(doc, office, issued_on)
    return o._to_bytes(doc)
