"""The demo's activity register and work teams (issue 11): a realistic year of activities at the
demo streets (those of 金水区 and 中原区) and at Zhengzhou's districts, with photos drawn with
Pillow (never downloaded) and stored through the pages' photo path; a team of 5–7 named people at
every demo street, whose volunteers are named on the activities; and one task whose target is
counted from the activities (每个街道全年开展法治教育活动不少于12次).

Everything is deterministic (the same titles, dates and figures on every run and machine) and
idempotent: an activity is registered unless its unit already has one of the same title and
date; a street's team is seeded only when it has none; the task only when Zhengzhou has none
of that title. Called by :func:`portal.services.demo.seed_demo`.
"""
from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Optional

from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from portal.extensions import db
from portal.models import Activity, TeamMember, Unit, User

#: Streets of these districts get activities and teams; every district of Zhengzhou gets activities.
STREETS_OF = ("410105", "410102")
CITY = "4101"
COUNTED_TITLE = "每个街道全年开展法治教育活动不少于12次"
#: One activity in this many gets photos (one, or two for every third of them).
PHOTO_EVERY = 8


def _share(*parts) -> float:
    """A deterministic number in [0, 1) for the parts."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _pick(options, *parts):
    return options[int(_share(*parts) * len(options))]


# (title, organising department, co-operating departments, main audience)
CATALOGUE: dict[str, list[tuple[str, str, list[str], str]]] = {
    "moral": [("新时代文明实践·道德讲堂", "propaganda", ["culture"], "mixed"),
              ("“最美家庭”事迹分享会", "women", ["propaganda"], "mixed"),
              ("社会主义核心价值观主题宣讲", "propaganda", ["edu"], "mixed"),
              ("“讲好家乡故事”青少年宣讲", "ggw", ["edu", "youth"], "youth")],
    "legal": [("民法典进社区宣讲", "justice", ["propaganda"], "mixed"),
              ("防范电信网络诈骗宣传", "police", ["justice"], "elders"),
              ("青少年法治教育课堂", "justice", ["edu", "ggw"], "youth"),
              ("禁毒宣传进校园", "police", ["edu"], "youth"),
              ("老年人防诈骗知识讲座", "police", ["aging"], "elders"),
              ("宪法宣传周主题活动", "justice", ["propaganda"], "mixed")],
    "skills": [("新型职业农民种植技术培训", "agri", ["hrss"], "others"),
               ("家政服务技能培训班", "hrss", ["women"], "others"),
               ("电商直播技能培训", "hrss", ["youth"], "youth"),
               ("智能手机使用培训（老年班）", "sci", ["aging"], "elders"),
               ("科普讲座：健康生活方式", "sci", ["health"], "mixed")],
    "festival": [("春节走访慰问高龄老人", "civil", ["aging"], "elders"),
                 ("元宵节猜灯谜邻里联欢", "culture", [], "mixed"),
                 ("清明节带领学生祭扫烈士陵园", "ggw", ["edu", "youth"], "youth"),
                 ("端午节包粽子邻里节", "culture", ["women"], "mixed"),
                 ("中秋节“月圆邻里情”活动", "culture", ["civil"], "mixed"),
                 ("重阳节敬老爱老活动", "aging", ["civil"], "elders")],
    "care": [("困境儿童关爱走访", "civil", ["women", "ggw"], "youth"),
             ("留守老人上门探访", "civil", ["aging"], "elders"),
             ("残疾人家庭帮扶慰问", "civil", ["health"], "others")],
    "volunteer": [("学雷锋志愿服务日", "youth", ["propaganda"], "mixed"),
                  ("社区环境清洁志愿活动", "youth", ["civil"], "mixed"),
                  ("“文明交通”志愿服务", "youth", ["police"], "mixed"),
                  ("义诊志愿服务进社区", "health", ["youth"], "elders")],
    "elder": [("老年大学书法班", "aging", ["culture"], "elders"),
              ("老年人太极拳教学", "aging", ["health"], "elders"),
              ("老年健康知识讲座", "health", ["aging"], "elders")],
    "family": [("家庭教育公益讲座", "women", ["edu"], "mixed"),
               ("亲子阅读活动", "women", ["culture", "edu"], "youth"),
               ("“好家风”故事会", "women", ["propaganda"], "mixed")],
    "other": [("社区教育读书会", "edu", ["culture"], "mixed"),
              ("社区学习成果展示", "edu", [], "mixed")],
}
#: The festivals' days in the year of the seed (a festival title falls on its own day).
FESTIVAL_DAYS = {"春节": (2, 17), "元宵": (3, 3), "清明": (4, 4), "端午": (6, 19), "中秋": (9, 25), "重阳": (10, 18),
                 "学雷锋": (3, 5), "宪法": (12, 4)}
COMMUNITIES = ("文化路社区", "经三路社区", "花园社区", "幸福里社区", "建设路社区", "绿城社区", "桐柏路社区", "丰产路社区")
PLACES = ("{community}党群服务中心", "{street}新时代文明实践站", "{community}居民活动室", "辖区小学多功能厅",
          "{community}文化广场", "{street}老年活动中心")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
GIVEN = ("建国", "秀英", "桂兰", "志强", "丽娟", "海燕", "国华", "玉梅", "德明", "淑珍", "文博", "子涵", "雨萱", "浩然",
         "明辉", "红霞", "建华", "春梅", "卫东", "晓燕", "振华", "慧敏", "永刚", "新民")
# (role, kind) of a team: a leader, a liaison, members of the 五老, volunteers.
TEAM_SHAPE = [("leader", "retired_official"), ("liaison", "teacher"), ("member", "veteran"), ("member", "expert"),
              ("volunteer", "volunteer"), ("member", "model_worker"), ("volunteer", "student")]


def _units() -> tuple[list[Unit], list[Unit]]:
    city = Unit.by_code(CITY)
    if city is None:
        return [], []
    districts = db.session.scalars(select(Unit).where(Unit.parent_id == city.id).order_by(Unit.code)).all()
    parents = [u.id for u in districts if u.code in STREETS_OF]
    streets = db.session.scalars(select(Unit).where(Unit.parent_id.in_(parents)).order_by(Unit.code)).all()
    return list(streets), list(districts)


# --- teams ----------------------------------------------------------------------------------------

def seed_teams(streets: list[Unit], today: date) -> int:
    from portal.services import activities as svc

    made = 0
    for unit in streets:
        if db.session.scalar(select(TeamMember.id).where(TeamMember.unit_id == unit.id).limit(1)) is not None:
            continue
        office = User.by_username(f"office-{unit.code}")
        if office is None:
            continue
        size = 5 + int(_share("team", unit.code) * 3)  # 5–7 active members
        used: set[str] = set()
        for index, (role, kind) in enumerate(TEAM_SHAPE[:size]):
            name = _person(unit.code, index, used)
            joined = date(today.year - 2, 3, 1) + timedelta(days=int(_share("joined", unit.code, index) * 600))
            svc.add_member(unit, {"name": name, "role": role, "kind": kind, "joined_on": min(joined, today),
                                  "phone": f"13{int(_share('phone', unit.code, index) * 10**9):09d}",
                                  "note": "社区教育工作队伍" if role != "volunteer" else "社区志愿者"}, by=office)
            made += 1
        if _share("left", unit.code) < 0.3:  # someone left: the roster keeps its history
            joined = date(today.year - 2, 5, 1)
            svc.add_member(unit, {"name": _person(unit.code, 9, used), "role": "member", "kind": "teacher",
                                  "joined_on": joined, "left_on": min(date(today.year, 1, 15), today),
                                  "phone": f"13{int(_share('phone', unit.code, 9) * 10**9):09d}",
                                  "note": "因工作调动离开"}, by=office)
            made += 1
    return made


def _person(code: str, index: int, used: set[str]) -> str:
    attempt = 0
    while True:
        name = _pick(SURNAMES, "surname", code, index, attempt) + _pick(GIVEN, "given", code, index, attempt)
        if name not in used:
            used.add(name)
            return name
        attempt += 1


# --- photos ----------------------------------------------------------------------------------------

PALETTES = {"moral": ((196, 40, 40), (250, 225, 190)), "legal": ((30, 70, 140), (220, 230, 245)),
            "skills": ((40, 120, 80), (225, 240, 225)), "festival": ((200, 50, 30), (255, 230, 150)),
            "care": ((230, 120, 60), (255, 240, 225)), "volunteer": ((210, 60, 40), (240, 240, 240)),
            "elder": ((120, 80, 40), (245, 235, 215)), "family": ((170, 80, 140), (250, 230, 240)),
            "other": ((60, 100, 120), (230, 240, 245))}
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


@lru_cache(maxsize=64)
def _photo(category: str, banner: str, variant: int) -> bytes:
    """A plausible activity photo: a room or a square, a red banner with the theme, rows of people."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1024, 683
    accent, light = PALETTES[category]
    image = Image.new("RGB", (width, height), light)
    draw = ImageDraw.Draw(image)
    outdoor = variant % 2 == 1
    if outdoor:  # sky and ground
        for y in range(0, height // 2, 4):
            shade = 200 - y // 6
            draw.rectangle([0, y, width, y + 4], fill=(120, 170, shade + 40))
        draw.rectangle([0, height // 2, width, height], fill=(150, 140, 120))
    else:  # a wall, a floor, a screen
        draw.rectangle([0, int(height * 0.62), width, height], fill=(170, 150, 125))
        draw.rectangle([int(width * 0.3), int(height * 0.2), int(width * 0.7), int(height * 0.5)], fill=(235, 235, 235),
                       outline=(80, 80, 80), width=6)
    draw.rectangle([int(width * 0.08), 32, int(width * 0.92), 120], fill=(200, 20, 30))
    try:
        font = ImageFont.truetype(FONT, 44)
    except OSError:
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), banner, font=font)
    draw.text(((width - (box[2] - box[0])) // 2, 76 - (box[3] - box[1]) // 2 - box[1]), banner, fill=(255, 230, 80),
              font=font)
    # People: rows of heads and shoulders, their colours varying.
    for row in range(3):
        y = int(height * (0.62 + 0.12 * row))
        for col in range(9 + row):
            x = int(width * (0.05 + col * 0.9 / (9 + row))) + (row * 23) % 40
            tone = int(_share("coat", category, variant, row, col) * 5)
            coat = [(40, 60, 110), (120, 30, 40), (60, 90, 60), (90, 90, 90), accent][tone]
            draw.ellipse([x, y - 70, x + 56, y - 14], fill=(230, 195, 160))
            draw.ellipse([x + 4, y - 78, x + 52, y - 44], fill=(30, 25, 20) if tone != 3 else (200, 200, 200))
            draw.rounded_rectangle([x - 18, y - 12, x + 74, y + 90], radius=24, fill=coat)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return buffer.getvalue()


def _photo_files(category: str, banner: str, index: int, count: int) -> list[FileStorage]:
    return [FileStorage(io.BytesIO(_photo(category, banner, (index + n) % 2)), filename=f"活动照片{n + 1}.jpg",
                        content_type="image/jpeg") for n in range(count)]


# --- activities -------------------------------------------------------------------------------------

def _when(title: str, unit_code: str, index: int, today: date) -> Optional[date]:
    first = date(today.year, 1, 5)
    for word, (month, day) in FESTIVAL_DAYS.items():
        if word in title:
            when = date(today.year, month, day)
            return when if when <= today else None
    span = (today - first).days
    return first + timedelta(days=int(_share("day", unit_code, index, title) * span))


def _plan(unit: Unit, *, street: bool) -> list[tuple[str, int]]:
    """(category, variant) of the unit's activities this year: at a street 6–14 legal-education
    activities (so that some reach the counted target of 12 and some do not) and 6–10 others;
    at a district 6–9 in all."""
    code = unit.code
    plan: list[tuple[str, int]] = []
    if street:
        plan += [("legal", n) for n in range(6 + int(_share("legal", code) * 9))]
        others = 6 + int(_share("others", code) * 5)
        categories = [c for c in CATALOGUE if c != "legal"]
    else:
        others = 6 + int(_share("others", code) * 4)
        categories = list(CATALOGUE)
    plan += [(_pick(categories, "category", code, n), n) for n in range(others)]
    return plan


def _figures(audience: str, key: tuple) -> dict:
    size = 20 + int(_share("size", *key) * 110)
    split = {"youth": (0.7, 0.1), "elders": (0.05, 0.8), "others": (0.15, 0.2), "mixed": (0.3, 0.35)}[audience]
    youth = int(size * split[0])
    elders = int(size * split[1])
    return {"youth": youth, "elders": elders, "others": size - youth - elders}


def seed_activities(streets: list[Unit], districts: list[Unit], today: date) -> int:
    from portal.services import activities as svc

    made = 0
    for unit in [*districts, *streets]:
        office = User.by_username(f"office-{unit.code}")
        if office is None:
            continue
        is_street = unit.tier == "street"
        existing = set(db.session.execute(select(Activity.title, Activity.start_date)
                                          .where(Activity.unit_id == unit.id)).all())
        volunteers = db.session.scalars(select(TeamMember).where(
            TeamMember.unit_id == unit.id, TeamMember.role == "volunteer", TeamMember.active_clause(today))
            .order_by(TeamMember.id)).all()
        for index, (category, variant) in enumerate(_plan(unit, street=is_street)):
            title, lead, co, audience = _pick(CATALOGUE[category], "title", unit.code, index, category, variant)
            when = _when(title, unit.code, index, today)
            if when is None:
                continue
            if (title, when) in existing:
                continue  # seeded before (or the same activity twice on one day: once is enough)
            existing.add((title, when))
            key = (unit.code, index, category)
            people = _figures(audience, key)
            helpers = 2 + int(_share("volunteers", *key) * 10)
            named = [{"member_id": m.id, "hours": 2 + int(_share("hours", *key, m.id) * 3)}
                     for m in volunteers[:1 + int(_share("named", *key) * 2)]]
            community = _pick(COMMUNITIES, "community", unit.code, index)
            place = _pick(PLACES, "place", *key).format(community=community, street=unit.name)
            funds = int(_share("funds", *key) * 40) * 50
            goods = int(_share("goods", *key) * 30) * 100 if category in ("festival", "care") else 0
            data = {"title": title, "category": category, "start_date": when, "place": place,
                    "lead_department": lead, "co_departments": co, "participants": people,
                    "volunteers": max(helpers, len(named)), "volunteer_hours": Decimal(helpers * (2 + index % 3)),
                    "funds": Decimal(funds), "donated_goods": Decimal(goods),
                    "narrative": f"{unit.name}在{place}开展“{title}”活动，{sum(people.values())}人次参加，"
                                 f"{helpers}名志愿者参与服务。",
                    "volunteer_members": named if is_street else []}
            photos = []
            if _share("photo", *key) < 1 / PHOTO_EVERY:
                photos = _photo_files(category, title, index, 2 if _share("two", *key) < 0.33 else 1)
            svc.create_activity(unit, data, by=office, photo_files=photos)
            made += 1
    return made


# --- the counted task ---------------------------------------------------------------------------

def seed_counted_task(today: date) -> Optional[str]:
    """Zhengzhou asks every demo street for at least 12 legal-education activities this year,
    counted from the register: passed to 金水区 and 中原区, and by them to their streets."""
    from portal.models import Task
    from portal.services import tasks as svc
    from portal.services.demo import _cascade_now, _instance

    city = Unit.by_code(CITY)
    office = User.by_username(f"office-{CITY}")
    if city is None or office is None or db.session.scalar(
            select(Task.id).where(Task.unit_id == city.id, Task.title == COUNTED_TITLE)) is not None:
        return None
    root = svc.create_task(city, {
        "title": COUNTED_TITLE, "lead_department": "justice", "co_departments": ["propaganda", "edu", "police"],
        "description": "各街道（乡镇）全年开展法治教育活动不少于12次，完成情况从活动登记自动统计，无需填报。",
        "due_date": date(today.year, 12, 31),
        "target": {"name": "法治教育活动", "unit": "次", "value": 12,
                   "counted_from": {"category": "legal", "measure": "count"}}}, by=office)
    _cascade_now(root, list(STREETS_OF), office)
    for code in STREETS_OF:
        district = _instance(root, code)
        district_office = User.by_username(f"office-{code}")
        if district is not None and district_office is not None:
            _cascade_now(district, "children", district_office)
    return COUNTED_TITLE


def seed(today: Optional[date] = None) -> dict:
    """Teams, then activities (naming the teams' volunteers), then the counted task."""
    from portal.clock import local_today

    from portal.metrics import mark_dirty

    today = today or local_today()
    streets, districts = _units()
    # Every unit seeded here, dirty at once: one set-based refresh of the figures after the commit
    # instead of one per unit (each write below finds its unit's refresh already queued).
    mark_dirty([unit.id for unit in [*streets, *districts]])
    members = seed_teams(streets, today)
    activities = seed_activities(streets, districts, today)
    db.session.flush()
    task = seed_counted_task(today)
    return {"members": members, "activities": activities, "task": task}
