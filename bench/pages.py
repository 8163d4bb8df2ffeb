"""The page stage of ``make bench``: gunicorn under a bounded load on 127.0.0.1.

:func:`measure_pages` starts gunicorn as the README's production section runs
it (``gunicorn -w 4 --timeout 120 -b 127.0.0.1:<free port> wsgi:app``, sync workers) on the
configured database, logs the needed accounts in once through the real login
form and reuses their session cookies (the API takes a bearer token from
``POST /api/v1/tokens``), checks that every URL answers 200, then measures each
URL twice with a small load generator of its own (threads, one keep-alive
``http.client`` connection per client, on loopback only):

- 1 client: ``BENCH_REQUESTS`` (30) sequential requests, or fewer when they
  take longer than ``BENCH_SECONDS`` (10) (at least 5);
- ``BENCH_CLIENTS`` (20) concurrent clients for ``BENCH_SECONDS``: each sends
  its next request as soon as the last one answered, nobody starts one after
  the deadline, requests in flight then are waited for (at most
  ``BENCH_TIMEOUT``, 120 s, a client-side timeout counting as an error).

For each: p50, p95, requests/s and errors (a status other than 200, a
timeout, a reset connection), with the ratio to ``/healthz`` measured first in
the same run under the same load shape (and once more at the end, to show the
drift of a shared machine). Then the province's 20,000-row subtree list
Excel, a file job since it has more than ``EXPORT_INLINE_MAX_ROWS`` rows, end
to end as its user gets it (:func:`measure_export_job`): the page asking for
it, its form posted with the CSRF token and the session cookie, the job's page
polled every ``BENCH_JOB_POLL`` (0.25 s; at most ``BENCH_JOB_TIMEOUT``, 900 s)
until it says done, the file downloaded and its rows counted (openpyxl,
read-only); the job runs on a real RQ worker started for it when the server
has ``REDIS_URL``, in-process in gunicorn without. Nothing is asserted here: :func:`markdown` puts
the issue's targets next to the figures. ``BENCH_WEB_WORKERS`` (4) changes the
gunicorn processes, ``BENCH_WEB_TIMEOUT`` its ``--timeout`` (120 s, as the
README runs it in production: a request that takes longer is killed and
answers 500). The bench server allows many logins (``LOGIN_LIMIT_*``)
and runs no embedded scheduler; everything else is the production set-up.
"""
from __future__ import annotations

import http.client
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
#: Before any page is timed, each is asked by a few clients for this long (untimed): every gunicorn
#: worker then has its templates compiled and its connections open for every page, so /healthz,
#: timed first, and the first page after it are not timed cold (0 turns it off).
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "1"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "120"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "4"))
WEB_TIMEOUT = os.environ.get("BENCH_WEB_TIMEOUT", "120")  # gunicorn's --timeout, as the README runs it
MIN_SEQUENTIAL = 5

#: Issue 9's measurement before the work (PostgreSQL, gunicorn 4 workers, 2 cores): label → (p95 at 1 ms,
#: ratio, p95 at 20 ms, requests/s at 20).
BEFORE = {
    "healthz": (5.2, 1, 190, 174),
    "province": (88, 15.7, 1782, 12.7),
    "tasks_overdue": (132, 22.6, 2614, 8.9),
    "api_tasks": (230, 44.3, 2392, 9.0),
    "task_detail": (110, 19.6, 1635, 15.7),
    "street": (34, 6.7, 660, 39),
}

TARGET_ONE = 4  # at 1 client, every page and API p95 ≤ 4× /healthz (issue 9)
TARGET_DASHBOARD = 5  # the provincial consolidated view's p95 ≤ 5× /healthz (issue 10)
TARGET_RPS = 60  # at 20 clients, ≥ 60 requests/s on the provincial pages (issue 9)

EXPORT_PATH = "/province/41/tasks/export.xlsx?scope=subtree"
#: The province's 20,000-row subtree list written inside the request, before it became a file job:
#: the page stage's last figure for it (PostgreSQL, the Henan-scale year, gunicorn as here).
EXPORT_IN_REQUEST_BEFORE_S = 13.7
JOB_POLL_SECONDS = float(os.environ.get("BENCH_JOB_POLL", "0.25"))
JOB_TIMEOUT = float(os.environ.get("BENCH_JOB_TIMEOUT", "900"))
#: Also write the same list inside a request, on a gunicorn of its own that has no file-job
#: threshold, to compare with the job in the same run (the machine's load moves between runs).
INLINE_REFERENCE = os.environ.get("BENCH_EXPORT_INLINE", "1") == "1"


@dataclass
class Page:
    key: str
    label: str
    path: str
    account: Optional[str] = None  # None: anonymous
    bearer: bool = False  # the API: a token instead of the session cookie
    provincial: bool = False  # counts for the ≥ 60 requests/s target
    download: bool = False  # an Excel download: no ×4 target
    target_one: Optional[float] = TARGET_ONE


@dataclass
class Timing:
    samples_ms: list = field(default_factory=list)
    errors: int = 0
    error_examples: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        ok = self.samples_ms
        return {"requests": len(ok) + self.errors, "ok": len(ok), "errors": self.errors,
                "error_examples": self.error_examples[:3],
                "p50_ms": round(statistics.median(ok), 2) if ok else None,
                "p95_ms": round(pct(ok, 0.95), 2) if ok else None,
                "rps": round(len(ok) / self.seconds, 1) if self.seconds and ok else 0.0,
                "seconds": round(self.seconds, 2)}


def pct(samples: list[float], q: float) -> float:
    """The q-quantile, nearest rank."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# --- the client -------------------------------------------------------------------------------

class Client:
    """One keep-alive connection to 127.0.0.1 (reopened when the server closes it)."""

    def __init__(self, port: int, timeout: float = TIMEOUT):
        self.port, self.timeout = port, timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def request(self, method: str, path: str, headers: Optional[dict] = None, body: Optional[bytes] = None):
        """(status, headers, body); raises OSError/HTTPException on a broken exchange."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:  # a kept-alive connection the server had closed: once more on a new one
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                self.close()
            return response.status, response.headers, data
        raise http.client.HTTPException("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def login(port: int, username: str, password: str) -> str:
    """The Cookie header of a session logged in through the real form (CSRF token and all)."""
    client = Client(port)
    status, headers, body = client.request("GET", "/login")
    if status != 200:
        raise RuntimeError(f"GET /login answered {status}")
    jar = _cookies(headers, {})
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body)
    form = {"username": username, "password": password}
    if token:
        form["csrf_token"] = token.group(1).decode()
    status, headers, _body = client.request(
        "POST", "/login", body=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(jar)})
    client.close()
    location = headers.get("Location", "")
    if status != 302 or "/login" in location:
        raise RuntimeError(f"could not log in as {username} (status {status})")
    return _cookie_header(_cookies(headers, jar))


def api_token(port: int, username: str, password: str) -> str:
    import json

    client = Client(port)
    status, _headers, body = client.request("POST", "/api/v1/tokens",
                                            body=json.dumps({"username": username, "password": password}).encode(),
                                            headers={"Content-Type": "application/json"})
    client.close()
    if status not in (200, 201):
        raise RuntimeError(f"POST /api/v1/tokens answered {status}")
    return json.loads(body)["token"]


def _cookies(headers, jar: dict) -> dict:
    jar = dict(jar)
    for value in headers.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def _cookie_header(jar: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _one(client: Client, path: str, headers: dict, timing: Timing) -> None:
    start = time.perf_counter()
    try:
        status, _h, _body = client.request("GET", path, headers)
    except (OSError, http.client.HTTPException) as exc:
        client.close()
        timing.errors += 1
        timing.error_examples.append(type(exc).__name__)
        return
    elapsed = (time.perf_counter() - start) * 1000
    if status == 200:
        timing.samples_ms.append(elapsed)
    else:
        timing.errors += 1
        timing.error_examples.append(f"HTTP {status}")


def sequential(port: int, path: str, headers: dict, requests: int = REQUESTS, seconds: float = SECONDS) -> dict:
    """One client, ``requests`` requests one after the other (fewer, but ``MIN_SEQUENTIAL``, past ``seconds``)."""
    client, timing = Client(port), Timing()
    start = time.perf_counter()
    for i in range(requests):
        if i >= MIN_SEQUENTIAL and time.perf_counter() - start > seconds:
            break
        _one(client, path, headers, timing)
    timing.seconds = time.perf_counter() - start
    client.close()
    return timing.summary()


def concurrent(port: int, path: str, headers: dict, clients: int = CLIENTS, seconds: float = SECONDS) -> dict:
    """``clients`` clients for ``seconds``; requests/s over the time until the last answer."""
    timings = [Timing() for _ in range(clients)]
    deadline_box: list[float] = []
    ready = threading.Barrier(clients + 1)

    def work(timing: Timing) -> None:
        client = Client(port)
        ready.wait()
        while time.perf_counter() < deadline_box[0]:
            _one(client, path, headers, timing)
        client.close()

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in timings]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline_box.append(start + seconds)
    ready.wait()
    for t in threads:
        t.join(seconds + TIMEOUT + 10)
    total = Timing(seconds=time.perf_counter() - start)
    for t in timings:
        total.samples_ms += t.samples_ms
        total.errors += t.errors
        total.error_examples += t.error_examples
    result = total.summary()
    result["clients"] = clients
    return result


# --- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn as the README runs it in production, on 127.0.0.1 and a free port."""

    def __init__(self, workers: int = WEB_WORKERS, env: Optional[dict] = None, app: str = "wsgi:app"):
        self.port = free_port()
        self.workers = workers
        self.log_path = os.path.join(tempfile.gettempdir(), f"portal-bench-gunicorn-{os.getpid()}.log")
        self.command = [os.path.join(BIN, "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
                        *(["--timeout", WEB_TIMEOUT] if WEB_TIMEOUT else []), app]
        self.env = dict(os.environ, PYTHONPATH=ROOT, EMBEDDED_SCHEDULER="0", LOGIN_LIMIT_ACCOUNT="10000 per minute",
                        LOGIN_LIMIT_ADDRESS="10000 per minute", **(env or {}))
        self.env.pop("HEALTHZ_TOKEN", None)
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Server":
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 90
        client = Client(self.port, timeout=5)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited (code {self.proc.returncode}); see {self.log_path}")
            try:
                if client.request("GET", "/healthz")[0] == 200:
                    client.close()
                    # Every worker imports the app on its first request: warm them all.
                    for _ in range(self.workers * 4):
                        Client(self.port).request("GET", "/healthz")
                    return self
            except (OSError, http.client.HTTPException):
                client.close()
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer /healthz in 90 s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- the stage --------------------------------------------------------------------------------

def run_pages(port: int, pages: list[Page], headers_for: dict, *, clients: int = CLIENTS,
              seconds: float = SECONDS, requests: int = REQUESTS, log=print) -> dict:
    """Check, then time every page at 1 client and at ``clients``; /healthz first and last."""
    client = Client(port)
    out: dict = {"clients": clients, "seconds": seconds, "requests_at_1": requests, "pages": []}
    for page in pages:
        headers = headers_for.get((page.account, page.bearer), {})
        status, resp_headers, body = client.request("GET", page.path, headers)
        entry = {"key": page.key, "label": page.label, "path": page.path, "account": page.account,
                 "provincial": page.provincial, "download": page.download, "target_one": page.target_one,
                 "status": status, "bytes": len(body), "content_type": resp_headers.get("Content-Type", "")}
        if status != 200:
            entry["error"] = f"answered {status} before timing: not timed"
            log(f"  {page.label}: {status}, not timed")
        out["pages"].append(entry)
    client.close()
    if WARMUP_SECONDS > 0:
        log(f"  warming every page up ({WARMUP_SECONDS:g} s each, 4 clients, untimed) …")
        for entry, page in zip(out["pages"], pages):
            if "error" not in entry:
                concurrent(port, page.path, headers_for.get((page.account, page.bearer), {}), 4, WARMUP_SECONDS)
        out["warmup_seconds"] = WARMUP_SECONDS
    for entry, page in zip(out["pages"], pages):
        if "error" in entry:
            continue
        headers = headers_for.get((page.account, page.bearer), {})
        log(f"  {page.label} …")
        entry["one"] = sequential(port, page.path, headers, requests, seconds)
        entry["many"] = concurrent(port, page.path, headers, clients, seconds)
    healthz = next((p for p in pages if p.key == "healthz"), None)
    if healthz is not None:
        out["healthz_again"] = {"one": sequential(port, healthz.path, {}, requests, seconds),
                                "many": concurrent(port, healthz.path, {}, clients, seconds)}
    base = next((e for e in out["pages"] if e["key"] == "healthz" and "one" in e), None)
    for entry in out["pages"]:
        if base is None or "one" not in entry:
            continue
        for shape in ("one", "many"):
            mine, ref = entry[shape], base[shape]
            mine["p95_ratio"] = round(mine["p95_ms"] / ref["p95_ms"], 1) if mine["p95_ms"] and ref["p95_ms"] else None
            mine["rps_ratio"] = round(mine["rps"] / ref["rps"], 3) if ref["rps"] else None
    return out


def henan_pages(period: str, task_id: Optional[int]) -> list[Page]:
    """The URLs of issues 9, 10 and 11 on the Henan network."""
    province, city, street = "office-41", "office-4101", "office-410105001"
    pages = [
        Page("healthz", "/healthz", "/healthz", target_one=1),
        Page("province", "/province/41/", "/province/41/", province, provincial=True),
        Page("tasks_overdue", "province task list, subtree, overdue",
             "/province/41/tasks/?scope=subtree&overdue=1", province, provincial=True),
        Page("api_tasks", "GET /api/v1/units/41/tasks?scope=subtree", "/api/v1/units/41/tasks?scope=subtree",
             province, bearer=True, provincial=True),
    ]
    if task_id is not None:
        pages.append(Page("task_detail", "a provincial task passed to 2,586 streets (detail page)",
                          f"/province/41/tasks/{task_id}/", province, provincial=True))
    pages += [
        Page("street", "/street/410105001/ (its office)", "/street/410105001/", street),
        # Above EXPORT_INLINE_MAX_ROWS the download answers a page asking to prepare the file as a job:
        # a page like the others here; the job itself is timed end to end by measure_export_job.
        Page("tasks_export", "the province's subtree list Excel: the page asking for the file job",
             EXPORT_PATH, province, provincial=True),
        Page("dashboard", f"/province/41/dashboard/?period={period}", f"/province/41/dashboard/?period={period}",
             province, provincial=True, target_one=TARGET_DASHBOARD),
        Page("dashboard_city", "/city/4101/dashboard/ (its office)", "/city/4101/dashboard/", city),
        Page("reporting", "/province/41/dashboard/reporting", "/province/41/dashboard/reporting", province,
             provincial=True),
        Page("dashboard_export", "/province/41/dashboard/export.xlsx", "/province/41/dashboard/export.xlsx",
             province, provincial=True, download=True, target_one=None),
        Page("activities", "the province's activity register, subtree", "/province/41/activities/?scope=subtree",
             province, provincial=True),
    ]
    return pages


def sign_in(port: int, pages: list[Page], password: str) -> dict:
    """{(account, bearer): headers} for every account the pages need."""
    headers: dict = {(None, False): {}}
    for account, bearer in sorted({(p.account, p.bearer) for p in pages if p.account}):
        if bearer:
            headers[(account, True)] = {"Authorization": f"Bearer {api_token(port, account, password)}"}
        else:
            headers[(account, False)] = {"Cookie": login(port, account, password)}
    return headers


def measure_pages(results: dict, notes: list[str], *, period: str, task_id: Optional[int], password: str,
                  log=print, worker=None, export_job_skipped: Optional[str] = None, expected_rows=None) -> None:
    """The pages under load; then the big download as a file job (:func:`measure_export_job`),
    run where the server sends its jobs: ``worker()``, when given, is a context manager that runs a
    real RQ worker meanwhile (yielding None when it could not start); without it the server runs
    its jobs in-process (no ``REDIS_URL``). ``export_job_skipped`` says why it cannot be measured.
    ``expected_rows(job_id)``: the rows the job's list has, to check the file against."""
    pages = henan_pages(period, task_id)
    if task_id is None:
        notes.append("No provincial task passed to every street was found: its detail page was not timed.")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with Server() as server:
        log(f"  gunicorn {' '.join(server.command[1:])} (log {server.log_path})")
        headers = sign_in(server.port, pages, password)
        out = run_pages(server.port, pages, headers, log=log)
        out["server"] = " ".join(["gunicorn", *server.command[1:]])
        results.pop("tasks_export_job", None)  # an earlier run's figure (a partial run keeps the others)
        if export_job_skipped:
            notes.append(f"The province's subtree list Excel as a file job was not measured: {export_job_skipped}.")
        else:
            cookie = headers[("office-41", False)]["Cookie"]
            _export_job(server.port, cookie, results, notes, worker=worker, expected_rows=expected_rows, log=log)
    if not export_job_skipped and INLINE_REFERENCE and "tasks_export_job" in results:
        results["tasks_export_job"]["in_request_same_run"] = export_in_request(password, log=log)
    out["stage_seconds"] = round(time.perf_counter() - start, 1)
    out["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    results["page_load"] = out
    bad = [p for p in out["pages"] if "error" in p or p.get("one", {}).get("errors") or p.get("many", {}).get("errors")]
    for p in bad:
        notes.append(f"{p['label']}: " + (p.get("error") or
                     f"{p['one']['errors']} errors at 1 client, {p['many']['errors']} at {out['clients']} "
                     f"({', '.join(sorted(set(p['one']['error_examples'] + p['many']['error_examples'])))})"))


# --- the big download as a file job ------------------------------------------------------------

def job_state(html) -> dict:
    """What a file job's page says: ``state`` (queued, running, done, failed; None when the page
    has no job state), ``done``/``total`` of the progress line while it runs (``total`` None when the
    page shows "?"), ``download`` (the prepared file's link, once done), ``applied`` (an upload's
    activities saved), ``refused`` (an upload refused for its rows' problems) and ``error``."""
    import html as html_lib

    text = html.decode("utf-8", "replace") if isinstance(html, (bytes, bytearray)) else html
    out: dict = {"state": None, "done": None, "total": None, "stage": None, "download": None, "applied": None,
                 "refused": False, "error": None}
    state = re.search(r'id="file-job-state"[^>]*data-state="([a-z]+)"', text)
    if state:
        out["state"] = state.group(1)
    line = re.search(r'id="file-job-progress"[^>]*>(.*?)</p>', text, re.S)
    if line:
        figures = re.search(r"(\d+)\s*/\s*(\d+|\?)", line.group(1))
        if figures:
            out["done"] = int(figures.group(1))
            out["total"] = None if figures.group(2) == "?" else int(figures.group(2))
            out["stage"] = line.group(1)[:figures.start()].strip()  # 正在检查… / 正在保存… / 正在生成…
    link = re.search(r'<a [^>]*id="file-job-download"[^>]*href="([^"]+)"', text)
    if link:
        out["download"] = html_lib.unescape(link.group(1))
    applied = re.search(r'id="file-job-applied"[^>]*>\D*(\d+)', text)
    if applied:
        out["applied"] = int(applied.group(1))
    out["refused"] = 'id="file-job-refused"' in text
    failed = re.search(r'id="file-job-failed"[^>]*>(.*?)</p>', text, re.S)
    if failed:
        out["error"] = html_lib.unescape(failed.group(1).strip())
    return out


def ask_form(html) -> tuple[str, Optional[str]]:
    """The action and CSRF token of the form a page asking for a file job posts (``file-job-form``)."""
    import html as html_lib

    text = html.decode("utf-8", "replace") if isinstance(html, (bytes, bytearray)) else html
    form = re.search(r'<form\b[^>]*\bid="file-job-form"[^>]*>', text)
    if not form:
        raise ValueError("the page has no file-job form")
    action = re.search(r'action="([^"]*)"', form.group(0))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text[form.end():])
    return html_lib.unescape(action.group(1)) if action else "", token.group(1) if token else None


def xlsx_rows(data: bytes, sheet: Optional[str] = None) -> int:
    """Rows of a workbook's sheet (the first one by default) whose first cell is a whole number
    (a task's id): the list's rows without its title and header rows. Raises if ``data`` is not an xlsx."""
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True)
    try:
        ws = wb[sheet] if sheet else wb.worksheets[0]
        return sum(1 for (first,) in ws.iter_rows(min_col=1, max_col=1, values_only=True)
                   if isinstance(first, int) and not isinstance(first, bool))
    finally:
        wb.close()


def _path_of(location: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _jar(cookie_header: str) -> dict:
    return dict(part.split("=", 1) for part in cookie_header.split("; ") if "=" in part)


def measure_export_job(port: int, cookie: str, path: str = EXPORT_PATH, *, poll: float = JOB_POLL_SECONDS,
                       timeout: float = JOB_TIMEOUT, sheet: Optional[str] = None, log=print) -> dict:
    """The big download as its user gets it: the page asking for the job, its form posted (CSRF
    token and session cookie), the job's page polled until the job is done, then the file
    downloaded and its rows counted. Seconds from the POST to the page saying done, the download's
    time, and every distinct progress (done, total) the page showed on the way."""
    client = Client(port)
    jar = _jar(cookie)
    try:
        status, headers, body = client.request("GET", path, {"Cookie": _cookie_header(jar)})
        if status != 200:
            return {"error": f"GET {path} answered {status}"}
        jar = _cookies(headers, jar)
        action, token = ask_form(body)
        form = {"csrf_token": token} if token else {}
        start = time.perf_counter()
        status, headers, _body = client.request(
            "POST", action or path, body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(jar)})
        post_s = time.perf_counter() - start
        location = headers.get("Location", "")
        if status != 302 or not location:
            return {"error": f"POST {action or path} answered {status}, not the job's page"}
        jar = _cookies(headers, jar)
        page = _path_of(location)
        job = re.search(r"/(\d+)/?$", page.split("?")[0])
        seen: list = []
        polls, state, last = 0, {"state": None}, None
        while True:
            status, headers, body = client.request("GET", page, {"Cookie": _cookie_header(jar)})
            polls += 1
            if status != 200:
                return {"error": f"the job's page answered {status}", "job_page": page}
            jar = _cookies(headers, jar)
            state = job_state(body)
            if state["state"] is None:  # e.g. a list short enough to be sent at once: no job to wait for
                return {"error": f"{page} is not a file job's page ({headers.get('Content-Type', '')})",
                        "job_page": page, "post_s": round(post_s, 3)}
            if state["state"] == "running" and state["done"] is not None:
                mark = [state["done"], state["total"], state["stage"]]
                if not seen or seen[-1] != mark:
                    seen.append(mark)
            if state["state"] in ("done", "failed"):
                break
            if time.perf_counter() - start > timeout:
                break
            if state["state"] != last:
                log(f"    job {state['state']} …")
                last = state["state"]
            time.sleep(poll)
        done_s = time.perf_counter() - start
        out = {"job_page": page, "job_id": int(job.group(1)) if job else None, "post_s": round(post_s, 3),
               "post_to_done_s": round(done_s, 2), "state": state["state"], "polls": polls,
               "poll_every_s": poll, "progress_seen": seen}
        if state["state"] != "done":
            out["error"] = (f"the job ended {state['state']}: {state['error']}" if state["state"] == "failed"
                            else f"the job was still {state['state']} after {timeout:g} s")
            return out
        if not state["download"]:
            out["error"] = "the job's page says done but offers no download"
            return out
        start = time.perf_counter()
        status, headers, data = client.request("GET", _path_of(state["download"]), {"Cookie": _cookie_header(jar)})
        out["download_s"] = round(time.perf_counter() - start, 3)
        out.update(download_status=status, bytes=len(data), content_type=headers.get("Content-Type", ""))
        if status != 200:
            out["error"] = f"the download answered {status}"
            return out
        try:
            out["rows"] = xlsx_rows(data, sheet)
        except Exception as exc:  # noqa: BLE001 - reported: the file is not a workbook
            out["error"] = f"the file is not a readable xlsx ({type(exc).__name__}: {exc})"
        return out
    finally:
        client.close()


def export_in_request(password: str, *, log=print) -> dict:
    """The province's subtree list Excel written inside one request, as before the file jobs: a
    gunicorn of one worker (the same command, ``EXPORT_INLINE_MAX_ROWS`` above the download's 20,000)
    answering the GET with the file; its seconds, status and rows."""
    from portal.exports.tasks_excel import TASKS_SHEET

    log("  the same Excel inside a request (a gunicorn without the file-job threshold), for comparison …")
    with Server(workers=1, env={"EXPORT_INLINE_MAX_ROWS": "1000000"}) as server:
        cookie = login(server.port, "office-41", password)
        client = Client(server.port)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        try:
            status, headers, data = client.request("GET", EXPORT_PATH, {"Cookie": cookie})
        except (OSError, http.client.HTTPException) as exc:
            return {"error": f"{type(exc).__name__} after {time.perf_counter() - start:.1f} s"}
        finally:
            client.close()
        out = {"seconds": round(time.perf_counter() - start, 2), "status": status, "bytes": len(data),
               "load_average": round(load, 1), "timeout": WEB_TIMEOUT}
    if status == 200 and headers.get("Content-Type", "").startswith("application/vnd.openxmlformats"):
        out["rows"] = xlsx_rows(data, TASKS_SHEET)
    else:
        out["error"] = f"answered {status} ({headers.get('Content-Type', '')}), not the file"
    return out


def _export_job(port: int, cookie: str, results: dict, notes: list[str], *, worker, expected_rows, log) -> None:
    from contextlib import nullcontext

    from portal.exports.tasks_excel import TASKS_SHEET

    log("  the province's subtree list Excel as a file job (POST → done → download) …")
    with (worker() if worker is not None else nullcontext("in-process")) as runner:
        if runner is None:
            notes.append("The province's subtree list Excel as a file job was not measured: the worker did not "
                         "start.")
            return
        load = os.getloadavg()[0]
        job = measure_export_job(port, cookie, EXPORT_PATH, sheet=TASKS_SHEET, log=log)
    job.update(path=EXPORT_PATH, via="the worker" if worker is not None else "no REDIS_URL: run in-process inside the POST",
               before_in_request_s=EXPORT_IN_REQUEST_BEFORE_S, load_average=round(load, 1))
    if expected_rows is not None and job.get("job_id") is not None:
        job["expected_rows"] = expected_rows(job["job_id"])
    results["tasks_export_job"] = job
    if job.get("error"):
        notes.append(f"The province's subtree list Excel as a file job: {job['error']}.")
    elif job.get("expected_rows") is not None and job.get("rows") != job["expected_rows"]:
        notes.append(f"The province's subtree list Excel as a file job has {job.get('rows')} rows; its list has "
                     f"{job['expected_rows']}.")


# --- the report -------------------------------------------------------------------------------

def _ms(value) -> str:
    return "—" if value is None else (f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms")


def _verdict(ok) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def markdown(out: dict) -> str:
    """The page table (after), the issue's table (before), and the targets next to the figures."""
    n = out["clients"]
    lines = [f"Pages under load: {out.get('server', 'gunicorn')}; 1 client ({out['requests_at_1']} requests, at most "
             f"{out['seconds']:g} s) and {n} clients ({out['seconds']:g} s); ratios to `/healthz` in the same run.",
             "",
             f"| page | p50 @1 | p95 @1 | ×healthz | target @1 | p50 @{n} | p95 @{n} | ×healthz | req/s @{n} "
             f"| target @{n} | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in out["pages"]:
        label = p["label"].replace("|", "\\|")
        if "one" not in p:
            lines.append(f"| {label} | {p.get('error', '')} | | | | | | | | | **{p['status']}** |")
            continue
        one, many = p["one"], p["many"]
        if p["key"] == "healthz":
            t1, tn = "(reference)", "(reference)"
        else:
            limit = p.get("target_one")
            t1 = "none (a download)" if limit is None else (
                f"≤ {limit}× {_verdict(one['p95_ratio'] is not None and one['p95_ratio'] <= limit)}")
            tn = (f"≥ {TARGET_RPS}/s {_verdict(many['rps'] >= TARGET_RPS)}" if p["provincial"] and not p["download"]
                  else "—")
        errors = one["errors"] + many["errors"]
        lines.append(f"| {label} | {_ms(one['p50_ms'])} | {_ms(one['p95_ms'])} | {one.get('p95_ratio') or '—'} | {t1} "
                     f"| {_ms(many['p50_ms'])} | {_ms(many['p95_ms'])} | {many.get('p95_ratio') or '—'} "
                     f"| {many['rps']} | {tn} | {'**' + str(errors) + '**' if errors else 0} |")
    again = out.get("healthz_again")
    if again:
        lines += ["", f"`/healthz` again at the end: p95 {_ms(again['one']['p95_ms'])} at 1 client, "
                  f"{_ms(again['many']['p95_ms'])} and {again['many']['rps']} req/s at {n} (the drift of the "
                  "machine during the stage)."]
    lines += ["", "Before (issue 9, PostgreSQL, gunicorn 4 workers, same load shape):", "",
              "| page | p95 @1 | ×healthz | p95 @20 | req/s @20 | after: p95 @1 | ×healthz | req/s @20 |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    by_key = {p["key"]: p for p in out["pages"]}
    labels = {"healthz": "`/healthz`", "province": "`/province/41/`", "tasks_overdue": "province task list, subtree, "
              "overdue", "api_tasks": "`GET /api/v1/units/41/tasks?scope=subtree`",
              "task_detail": "a provincial task passed to 2,586 streets", "street": "`/street/410105001/`"}
    for key, (p95_1, ratio, p95_20, rps) in BEFORE.items():
        after = by_key.get(key, {})
        one, many = after.get("one"), after.get("many")
        lines.append(f"| {labels[key]} | {p95_1:g} ms | {ratio} | {p95_20:,} ms | {rps} | "
                     + (f"{_ms(one['p95_ms'])} | {one.get('p95_ratio')} | {many['rps']} |" if one else "— | — | — |"))
    return "\n".join(lines) + "\n"
