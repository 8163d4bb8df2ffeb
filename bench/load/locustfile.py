"""The load mix for ``make load`` (Locust, headless, loopback only).

* Office users (most): log in once, then browse their workspace, the units
  below (pages and search), the task lists (own, subtree, filters), a task,
  the meetings and the notification centre.
* Street reporters (the liaisons of the demo streets, else the street offices):
  look at their task list and a task, and report progress on an open task with
  a small picture as evidence; one simulated reporter per task.
* One provincial office (``fixed_count = 1``): over the API, issues a task and
  passes it down to every street (2,586), then follows the cascade's progress.

The accounts and task ids come from ``LOAD_PLAN`` (a JSON file written by
run.py from the seeded database). Every request that does not answer what a
user expects counts as an error.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import struct
import zlib
from datetime import date, timedelta
from urllib.parse import urlparse

from locust import FastHttpUser, between, events, task

PLAN = json.load(open(os.environ["LOAD_PLAN"], encoding="utf-8"))
PASSWORD = PLAN["password"]
THINK = tuple(float(x) for x in os.environ.get("LOAD_THINK", "5,15").split(","))
LOGIN_FORM = 'name="password"'
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_offices = itertools.cycle(PLAN["offices"])
_reporters = itertools.cycle(PLAN["reporters"])
#: Share of simulated users who log in during the run; the others reuse a session of
#: their account opened before it (see run.py).
LOGIN_SHARE = float(os.environ.get("LOAD_LOGIN_SHARE", "0.1"))
SEARCHES = ["街道", "镇", "区", "县", "41", "乡", "路"]


@events.init.add_listener
def _loopback_only(environment, **_kw):
    host = urlparse(environment.host or "").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"make load targets loopback only, not {host!r}")


def _png() -> bytes:
    """A valid 8x8 grey PNG (the upload is checked by content)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes([128] * 8) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = _png()


def _cookie(name: str, value: str):
    from http.cookiejar import Cookie

    return Cookie(0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {})


class PortalUser(FastHttpUser):
    abstract = True
    # People read what they opened before the next click (LOAD_THINK, seconds, "min,max").
    wait_time = between(*THINK)

    def sign_in(self, username: str) -> None:
        if random.random() < LOGIN_SHARE or username not in PLAN.get("cookies", {}):
            return self.login(username)
        for name, value in PLAN["cookies"][username].items():
            self.client.cookiejar.set_cookie(_cookie(name, value))

    def login(self, username: str) -> None:
        page = self.client.get("/login", name="/login")
        token = CSRF_RE.search(page.text)
        with self.client.post("/login", data={"username": username, "password": PASSWORD,
                                              "csrf_token": token.group(1) if token else ""},
                              name="/login [POST]", catch_response=True) as response:
            if response.status_code != 200 or LOGIN_FORM in (response.text or ""):  # still on the login form
                response.failure(f"login failed for {username} ({response.status_code})")

    def page(self, url: str, name: str, expect: str | None = None):
        with self.client.get(url, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
            elif LOGIN_FORM in (response.text or ""):
                response.failure("sent to the login page")
            elif expect and expect not in response.text:
                response.failure(f"missing {expect!r}")
            return response


class OfficeUser(PortalUser):
    weight = 7

    def on_start(self):
        self.account = next(_offices)
        self.base = f"/{self.account['tier']}/{self.account['code']}"
        self.sign_in(self.account["username"])

    @task(4)
    def workspace(self):
        self.page(self.base + "/", "/<tier>/<code>/", expect=self.account["code"])

    @task(2)
    def units_below(self):
        if self.account["tier"] == "street":
            return self.workspace()
        self.page(f"{self.base}/?page={random.randint(1, 3)}", "/<tier>/<code>/?page=")
        self.page(f"{self.base}/?q={random.choice(SEARCHES)}", "/<tier>/<code>/?q=")

    @task(4)
    def task_lists(self):
        self.page(self.base + "/tasks/", "/<tier>/<code>/tasks/")
        if self.account["tier"] != "street":
            scope = random.choice(["subtree", "department"])
            self.page(f"{self.base}/tasks/?scope={scope}", "/<tier>/<code>/tasks/?scope=")
        self.page(f"{self.base}/tasks/?overdue=1", "/<tier>/<code>/tasks/?overdue=1")

    @task(2)
    def a_task(self):
        task_ids = self.account.get("tasks") or []
        if task_ids:
            self.page(f"{self.base}/tasks/{random.choice(task_ids)}/", "/<tier>/<code>/tasks/<id>/")

    @task(1)
    def meetings(self):
        self.page(self.base + "/meetings/", "/<tier>/<code>/meetings/")

    @task(1)
    def notifications(self):
        self.page("/notifications/", "/notifications/")


class StreetReporter(PortalUser):
    """A street's liaison (or its office) reporting on the street's task."""
    weight = 3

    def on_start(self):
        self.account = next(_reporters)
        self.base = f"/street/{self.account['code']}"
        self.sign_in(self.account["username"])

    @task(2)
    def my_tasks(self):
        self.page(self.base + "/tasks/", "/street/<code>/tasks/")
        self.page(f"{self.base}/tasks/{self.account['task']}/", "/street/<code>/tasks/<id>/")

    @task(1)
    def report_progress(self):
        detail = self.page(f"{self.base}/tasks/{self.account['task']}/", "/street/<code>/tasks/<id>/")
        token = CSRF_RE.search(detail.text or "")
        data = {"csrf_token": token.group(1) if token else "", "percent": str(random.randint(10, 90)),
                "narrative": "本周组织居民学习活动两场，参与约六十人次。"}
        files = {"evidence": ("现场照片.png", PNG, "image/png")}
        with self.client.post(f"{self.base}/tasks/{self.account['task']}/report", data=data, files=files,
                              name="/street/<code>/tasks/<id>/report [POST]", catch_response=True) as response:
            if response.status_code != 200 or LOGIN_FORM in (response.text or ""):
                response.failure(f"report not saved ({response.status_code})")


class CascadingOffice(FastHttpUser):
    """One provincial office passes a new task down to every street, once, and watches it."""
    fixed_count = 1
    wait_time = between(2, 3)

    def on_start(self):
        self.headers = None
        self.run = None
        with self.client.post("/api/v1/tokens", json={"username": "office-41", "password": PASSWORD},
                              name="/api/v1/tokens [POST]", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}")
                return
            self.headers = {"Authorization": "Bearer " + response.json()["token"]}
        body = {"title": "负载测试：全省社区教育示范街道创建", "lead_department": "edu",
                "description": "逐级分解到全省每个街道（乡镇）。",
                "due_date": (date.today() + timedelta(days=60)).isoformat()}
        with self.client.post("/api/v1/units/41/tasks", json=body, headers=self.headers,
                              name="/api/v1/units/<code>/tasks [POST]", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
            self.task_id = response.json()["id"]
        with self.client.post(f"/api/v1/tasks/{self.task_id}/cascade", json={"to": "streets"}, headers=self.headers,
                              name="/api/v1/tasks/<id>/cascade [POST]", catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return
            self.run = response.json()
        print(f"cascade: task {self.task_id} to {self.run['total']} streets", flush=True)

    @task
    def follow(self):
        if not self.run:
            return
        if self.run["state"] == "finished":
            self.client.get("/api/v1/units/41/tasks?scope=subtree&page=1", headers=self.headers,
                            name="/api/v1/units/<code>/tasks")
            return
        with self.client.get(f"/api/v1/tasks/{self.task_id}/cascade/{self.run['run_id']}", headers=self.headers,
                             name="/api/v1/tasks/<id>/cascade/<run>", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return
            self.run = response.json()
            if self.run["state"] == "failed":
                response.failure(f"cascade failed: {self.run['error']}")
            elif self.run["state"] == "finished":
                print(f"cascade: finished, {self.run['done']} of {self.run['total']} streets", flush=True)
