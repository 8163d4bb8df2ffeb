"""The demo seed: Henan, and accounts for the provincial office, Zhengzhou,
Jinshui and Zhongyuan districts and their streets. Idempotent."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.extensions import db
from portal.models import Department, Membership, Role, Unit, User
from portal.services.units import ImportReport, import_units, load_file

LIAISON_UNITS = ("41", "4101", "410105", "410105001", "410105002")
STREETS_OF = ("410105", "410102")


class SeedLog(logging.Handler):
    """While the demo seeds, the jobs' and the figures' INFO lines (hundreds of roll-ups and
    refreshes) are counted per stage instead of printed; warnings and errors still show.
    ``with SeedLog() as log: ...``, then :meth:`summary` gives one line per stage."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stage = "units"
        self.jobs: dict[str, Counter] = {}
        self.lines: Counter = Counter()
        self._handlers: list[logging.Handler] = []
        self._level = logging.NOTSET

    @staticmethod
    def _loud(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            return
        self.lines[self.stage] += 1
        if record.name == "jobs" and isinstance(record.args, tuple) and len(record.args) >= 2:
            self.jobs.setdefault(self.stage, Counter())[str(record.args[1])] += 1

    def __enter__(self) -> "SeedLog":
        global _active
        root = logging.getLogger()
        self._handlers = list(root.handlers)
        for handler in self._handlers:
            handler.addFilter(self._loud)
        root.addHandler(self)
        self._level = root.level
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)  # the INFO records are made, to be counted
        _active = self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)
        for handler in self._handlers:
            handler.removeFilter(self._loud)
        _active = None

    def summary(self, stage: str) -> Optional[dict]:
        """``{"lines": n, "jobs": {job name: runs}}`` of a stage, None when it logged nothing."""
        if not self.lines.get(stage):
            return None
        return {"lines": self.lines[stage], "jobs": dict(self.jobs.get(stage, {}))}


_active: Optional[SeedLog] = None


def _stage(name: str) -> None:
    """The seed's stage, for the counted log lines."""
    if _active is not None:
        _active.stage = name


#: The seed's stages, in order (see :func:`seed_demo`).
STAGES = ("units", "accounts", "meetings", "tasks", "activities", "after_commit", "figures")


@dataclass
class SeedResult:
    report: ImportReport
    created: list[str] = field(default_factory=list)
    existing: int = 0
    meetings: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    activities: dict = field(default_factory=dict)


def _office_units() -> list[Unit]:
    province = Unit.by_code("41")
    zhengzhou = Unit.by_code("4101")
    cities = db.session.scalars(select(Unit).where(Unit.parent_id == province.id).order_by(Unit.code)).all()
    districts = db.session.scalars(select(Unit).where(Unit.parent_id == zhengzhou.id).order_by(Unit.code)).all()
    parents = [Unit.by_code(code).id for code in STREETS_OF]
    streets = db.session.scalars(select(Unit).where(Unit.parent_id.in_(parents)).order_by(Unit.code)).all()
    return [province, *cities, *districts, *streets]


def seed_demo(divisions_path: str, *, password: str) -> SeedResult:
    _stage("units")
    result = SeedResult(report=import_units(load_file(divisions_path)))
    db.session.flush()
    _stage("accounts")
    # One hash for every demo account: the seed stays fast, and these are demo
    # accounts whose password is printed anyway.
    password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
    existing = set(db.session.scalars(select(User.username)))

    def ensure(username: str, display: str, unit: Unit, role: Role, dept: str | None = None) -> None:
        if username in existing:
            result.existing += 1
            return
        user = User(username=username, display_name=display, home_unit_id=unit.id, active=True,
                    password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role.value, department_code=dept))
        existing.add(username)
        result.created.append(username)

    for unit in _office_units():
        ensure(f"office-{unit.code}", f"{unit.name}社区教育办公室", unit, Role.OFFICE_ADMIN, None)
    departments = Department.all()
    for code in LIAISON_UNITS:
        unit = Unit.by_code(code)
        for dept in departments:
            ensure(f"{dept.code}-{unit.code}", f"{unit.name}{dept.name_zh}联络员", unit, Role.LIAISON, dept.code)
    ensure("viewer-41", "河南省领导（只读）", Unit.by_code("41"), Role.VIEWER, None)
    db.session.flush()
    _stage("meetings")
    result.meetings = seed_meetings()
    _stage("tasks")
    result.tasks = seed_tasks()
    from portal.services import demo_activities  # the activity register, the teams, a counted target

    _stage("activities")
    result.activities = demo_activities.seed()
    _stage("after_commit")  # the jobs the seed queued run when the caller commits
    if result.activities.get("task"):
        result.tasks.append(result.activities["task"])
    return result


# --- demo meetings -------------------------------------------------------------

def _quarter_title(when, unit_name: str) -> str:
    return f"{unit_name}{when.year}年第{(when.month - 1) // 3 + 1}季度社区教育联席会议"


def seed_meetings(today=None) -> list[str]:
    """A held meeting with published minutes and decisions for 金水区 and 郑州市,
    and an upcoming Jinshui meeting whose agenda is open. Idempotent by title."""
    from datetime import date, datetime, time, timedelta

    from portal.models import Meeting, agency_names
    from portal.services import meetings as svc

    today = today or date.today()
    made: list[str] = []
    past = datetime.combine(today - timedelta(days=70), time(14, 30))
    upcoming = datetime.combine(today + timedelta(days=10), time(9, 0))

    def exists(unit: Unit, title: str) -> bool:
        return db.session.scalar(select(Meeting.id).where(Meeting.unit_id == unit.id, Meeting.title == title)) is not None

    plans = [
        ("410105", _quarter_title(past, "金水区"), "金水区教育局三楼会议室", [
            ("edu", "推进社区学校标准化建设", "2026年底前各街道社区学校达到市级标准。"),
            ("civil", "社区老年教育场地统筹使用", "利用社区党群服务中心开设老年课堂。"),
            ("women", "家庭教育指导服务进社区", "每个社区每季度至少开展一次家庭教育讲座。"),
        ], [
            ("各街道年内完成社区学校标准化建设，区教育局牵头验收。", "edu", ["civil", "finance"], 45),
            ("统筹社区党群服务中心场地，开设老年课堂不少于每周两次。", "civil", ["aging", "culture"], 90),
            ("开展“家庭教育进社区”活动，全年覆盖所有社区。", "women", ["edu", "ggw"], 120),
        ]),
        ("4101", _quarter_title(past, "郑州市"), "郑州市教育局第一会议室", [
            ("edu", "全市社区教育示范街道创建", "部署2026年度示范街道创建工作。"),
            ("hrss", "社区职业技能培训", "面向失业人员和农民工开展技能培训。"),
        ], [
            ("各区县（市）年内推荐市级社区教育示范街道不少于2个。", "edu", ["civil"], 60),
            ("全年开展社区职业技能培训不少于500人次。", "hrss", ["edu", "union", "women"], 120),
        ]),
    ]
    for code, title, place, proposals, decisions in plans:
        unit = Unit.by_code(code)
        office = User.by_username(f"office-{code}")
        if unit is None or office is None or exists(unit, title):
            continue
        meeting = svc.create_meeting(unit, {"title": title, "starts_at": past, "ends_at": past + timedelta(hours=2),
                                            "location": place, "notice_number": f"社教办〔{past.year}〕{len(made) + 3}号"},
                                     by=office)
        svc.transition(meeting, "agenda_open", by=office)
        items = []
        for dept, item_title, text in proposals:
            liaison = User.by_username(f"{dept}-{code}") or office
            item = svc.propose_item(meeting, title=item_title, description=text, by=liaison,
                                    department=dept if liaison is office else None)
            svc.decide_item(item, "accept", by=office)
            items.append(item)
        svc.transition(meeting, "agenda_locked", by=office)
        for invitation in meeting.invitations:
            dept = invitation.department_code
            if dept in ("police", "agri"):
                svc.record_attendance(meeting, dept, "absent", by=office, reason="另有公务")
            elif dept in ("finance",):
                svc.record_attendance(meeting, dept, "delegate", by=office, delegate_name="王科长")
            else:
                svc.record_attendance(meeting, dept, "present", by=office, attendee_name=f"{invitation.department.name_zh}联络员")
        svc.transition(meeting, "held", by=office)
        for index, (text, lead, co, due_days) in enumerate(decisions):
            svc.add_decision(meeting, {"text": text, "lead_department": lead, "co_departments": co,
                                       "due_date": (past + timedelta(days=due_days)).date(),
                                       "item_id": items[min(index, len(items) - 1)].id}, by=office)
        skeleton = svc.minutes_skeleton(meeting)
        svc.save_minutes(meeting, skeleton, by=office, base_revision=0)
        agencies = agency_names(unit)
        discussion = "\n".join(f"### {item.title}\n\n会议听取了{agencies[item.department_code]}的汇报，"
                                f"同意{item.description}\n" for item in items)
        body = f"# {title}\n\n## 议题讨论\n\n" + discussion
        svc.save_minutes(meeting, body, by=office, base_revision=1)
        svc.publish_minutes(meeting, by=office)
        # Dated as if it happened then: the notice ten days before the meeting, the minutes three days after.
        meeting.notice_issued_on = (past - timedelta(days=10)).date()
        meeting.minutes.published_at = datetime.combine((past + timedelta(days=3)).date(), time(2, 0))
        made.append(title)

    jinshui = Unit.by_code("410105")
    office = User.by_username("office-410105")
    title = _quarter_title(upcoming, "金水区")
    if jinshui is not None and office is not None and not exists(jinshui, title):
        meeting = svc.create_meeting(jinshui, {
            "title": title, "starts_at": upcoming, "location": "金水区教育局三楼会议室",
            "agenda_closes_at": upcoming - timedelta(days=3),
            "invited_units": ["410105001", "410105002"]}, by=office)
        svc.transition(meeting, "agenda_open", by=office)
        liaison = User.by_username("youth-410105")
        if liaison is not None:
            svc.propose_item(meeting, title="青少年假期社区实践活动", description="寒假期间组织青少年到社区开展志愿服务。",
                             by=liaison)
        made.append(title)
    db.session.flush()
    return made


# --- demo tasks --------------------------------------------------------------------

def seed_tasks(today=None) -> list[str]:
    """Provincial tasks cascaded down to the demo streets, with realistic
    progress, a return, acceptances and a supervision notice. Idempotent by title."""
    from datetime import date, timedelta
    from decimal import Decimal

    from portal.models import Task
    from portal.services import tasks as svc

    today = today or date.today()
    province = Unit.by_code("41")
    office = User.by_username("office-41")
    if province is None or office is None:
        return []
    plans = [
        ("2026年社区教育培训覆盖行动", "各地组织面向居民的社区教育培训，重点覆盖老年人和新就业群体。", "edu", ["hrss", "civil"],
         ("培训人次", "人次", 500), today + timedelta(days=45), Decimal("2")),
        ("老年教育进社区", "依托社区党群服务中心开设老年课堂，每个街道不少于两个教学点。", "civil", ["aging", "culture", "edu"],
         ("教学点", "个", 2), today + timedelta(days=20), Decimal("1")),
        ("青少年假期社区实践活动", "寒暑假期间组织青少年到社区开展志愿服务和研学实践。", "youth", ["edu", "ggw", "women"],
         ("参与人次", "人次", 200), today - timedelta(days=5), Decimal("1")),
    ]
    made = []
    for title, text, lead, co, target, due, weight in plans:
        if db.session.scalar(select(Task.id).where(Task.unit_id == province.id, Task.title == title)):
            continue
        root = svc.create_task(province, {"title": title, "description": text, "lead_department": lead,
                                          "co_departments": co, "due_date": due, "weight": weight,
                                          "target": {"name": target[0], "unit": target[1], "value": target[2]}},
                               by=office)
        _cascade_now(root, "children", office)
        for city_code, district_codes in (("4101", ("410105", "410102")),):
            city_task = _instance(root, city_code)
            city_office = User.by_username(f"office-{city_code}")
            _cascade_now(city_task, "children", city_office)
            for code in district_codes:
                _cascade_now(_instance(city_task, code), "children", User.by_username(f"office-{code}"))
        made.append(title)
        _demo_progress(root, lead)
        for city in db.session.scalars(select(Task).where(Task.parent_id == root.id)):
            if city.unit.code != "4101":  # Zhengzhou's are passed down by hand above, with real reports
                _pass_down_to_streets(city)
        _demo_history(root, lead, today)
    db.session.flush()
    for task in db.session.scalars(select(Task).where(Task.parent_id.is_not(None), Task.unit.has(tier="district"))):
        svc.rollup(task.id)
    return made


def _instance(parent, code: str):
    from portal.models import Task

    return db.session.scalar(select(Task).join(Unit, Unit.id == Task.unit_id)
                             .where(Task.parent_id == parent.id, Unit.code == code))


def _cascade_now(task, to, by):
    """In the seed the fan-out job runs at once instead of waiting for the queue, and only then:
    the job the service queued for after the commit is taken back."""
    from jobs import tasks as task_jobs
    from portal import queue
    from portal.services import tasks as svc

    run = svc.cascade_task(task, to, by=by)
    db.session.flush()
    queue.withdraw("jobs.tasks.run_cascade", run.id)
    task_jobs.run_cascade(run.id)


def _demo_progress(root, lead: str) -> None:
    """Street reports: some done and accepted, one returned, some under way, a few silent."""
    from decimal import Decimal

    from portal.models import Task
    from portal.services import tasks as svc

    streets = db.session.scalars(select(Task).join(Unit, Unit.id == Task.unit_id).where(
        Task.root_id == root.id, Unit.tier == "street", Unit.path.like("/41/4101/%")).order_by(Unit.code)).all()
    target = root.target_value or Decimal("100")
    for index, task in enumerate(streets):
        reporter = User.by_username(f"{lead}-{task.unit.code}") or User.by_username(f"office-{task.unit.code}")
        if reporter is None or index % 5 == 4:
            continue  # some streets have not reported yet
        reviewer = User.by_username(f"office-{task.unit.parent.code}")
        percent = Decimal([35, 60, 80, 100][index % 4])
        actual = (target * percent / 100).quantize(Decimal("1"))
        svc.report_progress(task, {"percent": percent / 2, "actual_value": actual / 2,
                                   "narrative": f"{task.unit.name}已组织开展第一阶段工作。"}, by=reporter)
        svc.report_progress(task, {"percent": percent, "actual_value": actual,
                                   "narrative": f"{task.unit.name}累计完成{actual}{root.target_unit or ''}。"}, by=reporter)
        if percent == 100 and reviewer is not None:
            svc.submit_task(task, by=reporter)
            if index % 8 == 3:
                svc.review_task(task, "return", "请补充活动照片和签到表。", by=reviewer)
            else:
                svc.review_task(task, "accept", "材料齐全，同意验收。", by=reviewer)
        elif index % 7 == 1 and reviewer is not None:
            svc.send_notice(task, "进度滞后，请于本周内报送最新进展。", by=reviewer)


def _share(*parts) -> float:
    """A deterministic number in [0, 1) for the parts (the same on every run and machine)."""
    import hashlib

    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _pass_down_to_streets(task) -> None:
    """The city's instance passed straight down to each of its streets, set-based (the services'
    cascade, with its job and notifications per unit, is for real use; these streets have no accounts)."""
    from portal.models import Task

    streets = db.session.execute(select(Unit.id, Unit.code).where(Unit.path.like(task.unit.path + "%"),
                                                                  Unit.tier == "street").order_by(Unit.code)).all()
    rows = [{"unit_id": unit_id, "unit_code": code, "parent_id": task.id, "root_id": task.root_id or task.id,
             "title": task.title, "description": task.description, "lead_department_code": task.lead_department_code,
             "co_department_codes": list(task.co_department_codes or []), "due_date": task.due_date,
             "target_name": task.target_name, "target_unit": task.target_unit, "target_value": task.target_value,
             "weight": task.weight, "status": "assigned", "created_by_id": task.created_by_id}
            for unit_id, code in streets]
    if rows:
        db.session.execute(Task.__table__.insert(), rows)


def _demo_history(root, lead: str, today) -> None:
    """Five months of deterministic, plausible progress reports for the task's instances at every
    street outside Zhengzhou (whose streets report through the services above), so that the
    consolidated views have something to compare: each city and street has its own diligence,
    some finish and are accepted, some fall behind, and some have not reported this month.
    Written set-based (one INSERT per table): the seed ends with a rebuild of the figures."""
    from datetime import datetime, time, timedelta
    from decimal import Decimal

    from sqlalchemy import bindparam

    from portal.models import Task, TaskReport, TaskReview

    first = (today.replace(day=1) - timedelta(days=140)).replace(day=1)
    months = []
    month = first
    while month <= today:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    leaves = db.session.execute(
        select(Task.id, Unit.code, Unit.path).join(Unit, Unit.id == Task.unit_id)
        .where(Task.root_id == root.id, Unit.tier == "street", ~Unit.path.like("/41/4101/%"))).all()
    target = root.target_value or Decimal("100")
    reports, reviews, states = [], [], []
    for task_id, code, path in leaves:
        city = path.strip("/").split("/")[1]
        # Diligence: the city's (0.55–0.95) with the street's own variation.
        diligence = 0.55 + 0.4 * _share("city", city) + 0.2 * (_share("street", code) - 0.5)
        percent, accepted_at = Decimal("0"), None
        for index, month in enumerate(months):
            current = month.year == today.year and month.month == today.month
            # A street reports on all its tasks in a month, or on none (now and then one is forgotten).
            if _share(code, month) > diligence * (0.9 if current else 1) or _share(root.id, code, month) < 0.06:
                continue  # nothing reported this month
            day = min(month.replace(day=1 + int(_share("day", root.id, code, month) * 25)), today)
            step = Decimal(8 + int(_share("step", root.id, code, month) * 20))
            percent = min(Decimal("100"), percent + step)
            if percent >= 60 and not current and _share("done", root.id, code, month) < diligence - 0.3:
                percent = Decimal("100")  # finished this month
            at = datetime.combine(day, time(2, int(_share("minute", code) * 59)))
            actual = (target * percent / 100).quantize(Decimal("1"))
            reports.append({"task_id": task_id, "department_code": lead, "percent": percent, "actual_value": actual,
                            "narrative": f"本月累计完成{actual}{root.target_unit or ''}。", "at": at})
            if percent == 100 and not current and _share("accept", root.id, code) < diligence:
                accepted_at = at + timedelta(days=2)
                reviews.append({"task_id": task_id, "decision": "accept", "comment": "材料齐全，同意验收。",
                                "at": accepted_at})
                break
        status = "accepted" if accepted_at else ("in_progress" if percent else "assigned")
        states.append({"task_id": task_id, "status": status, "progress": percent,
                       "actual_value": (target * percent / 100).quantize(Decimal("1")) if percent else None})
    if reports:
        db.session.execute(TaskReport.__table__.insert(), reports)
    if reviews:
        db.session.execute(TaskReview.__table__.insert(), reviews)
    tasks = Task.__table__
    if states:
        db.session.execute(tasks.update().where(tasks.c.id == bindparam("task_id")).values(
            status=bindparam("status"), progress=bindparam("progress"), actual_value=bindparam("actual_value"),
            created_at=datetime.combine(first, time(1, 0))), states)
