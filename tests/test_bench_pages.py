"""The page stage of ``make bench`` (bench/pages.py) against a tiny server on 127.0.0.1, for about a
second: its load generator counts answers and errors, logs in through a form with a CSRF token,
refuses to time a page that does not answer 200, and reports ratios and targets."""
from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import pages


def workbook(rows: list) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "任务清单"
    for row in rows:
        ws.append(row)
    wb.create_sheet("进度报送").append([99])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# The file job's pages as portal/templates/file_jobs/*.html render them (Chinese, the default).
ASK_PAGE = """<section><form method="post" action="/tasks/export.xlsx?scope=subtree&amp;status=" id="file-job-form">
  <input type="hidden" name="csrf_token" value="job-token">
  <button class="btn btn-primary btn-sm" type="submit">生成 Excel 文件</button></form></section>""".encode()


def running(done: str, total: str) -> bytes:
    return f"""<div id="file-job-state" data-state="running" aria-live="polite" data-hx-get="/tasks/export/7"
  data-hx-trigger="every 1s" data-hx-swap="outerHTML">
  <p class="mb-2" id="file-job-progress">
    正在生成… {done} / {total} 行
  </p></div>""".encode()


JOB_PAGES = [
    b'<div id="file-job-state" data-state="queued" aria-live="polite"><p class="mb-2">\xe7\xad\x89</p></div>',
    running("0", "?"), running("200", "1000"), running("200", "1000"), running("1000", "1000"),
    b"""<div id="file-job-state" data-state="done" aria-live="polite"><p class="mb-2">\xe6\x96\x87 3</p>
  <p><a class="btn btn-success btn-sm" id="file-job-download" href="/tasks/export/7/download">x.xlsx</a></p></div>""",
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    posted = False  # the export job's form was posted
    polls = 0  # its page was read so many times since
    job_page = "/tasks/export/7"  # where the posted form sends

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"ok", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        cookie = self.headers.get("Cookie", "")
        if self.path == "/healthz":
            self._send(200)
        elif self.path == "/slow":
            time.sleep(0.02)
            self._send(200)
        elif self.path == "/private":
            self._send(200 if "session=good" in cookie else 302, headers={"Location": "/login"})
        elif self.path == "/api":
            self._send(200 if self.headers.get("Authorization") == "Bearer t0k" else 401)
        elif self.path == "/login":
            self._send(200, b'<input name="csrf_token" type="hidden" value="abc123">',
                       {"Set-Cookie": "session=anon; HttpOnly; Path=/"})
        elif self.path == "/broken":
            self._send(500, b"boom")
        elif self.path == "/tasks/export.xlsx?scope=subtree" and "session=good" in cookie:
            self._send(200, ASK_PAGE)
        elif self.path == "/tasks/export/7" and "session=good" in cookie and Handler.posted:
            Handler.polls += 1
            self._send(200, JOB_PAGES[min(Handler.polls, len(JOB_PAGES)) - 1])
        elif self.path == "/tasks/export/7/download" and "session=good" in cookie:
            self._send(200, workbook([["任务清单 · 河南省"], ["编号", "单位"], [11, "a"], [12, "b"], [13, "c"]]))
        else:
            self._send(404, b"no")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if self.path == "/login":
            ok = ("csrf_token=abc123" in body and "password=right" in body
                  and "session=anon" in self.headers.get("Cookie", ""))
            if ok:
                self._send(302, b"", {"Location": "/choose", "Set-Cookie": "session=good; HttpOnly; Path=/"})
            else:
                self._send(200, b"wrong")
        elif self.path == "/tasks/export.xlsx?scope=subtree&status=":
            ok = "csrf_token=job-token" in body and "session=good" in self.headers.get("Cookie", "")
            Handler.posted = Handler.posted or ok
            self._send(302 if ok else 400, b"", {"Location": "http://127.0.0.1" + Handler.job_page} if ok else {})
        elif self.path == "/api/v1/tokens":
            self._send(201, json.dumps({"token": "t0k"}).encode(), {"Content-Type": "application/json"})
        else:
            self._send(404, b"no")


@pytest.fixture
def port():
    Handler.posted, Handler.polls = False, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_sequential_and_concurrent_count_answers_and_errors(port):
    one = pages.sequential(port, "/slow", {}, requests=6, seconds=5)
    assert one["ok"] == 6 and one["errors"] == 0
    assert 20 <= one["p50_ms"] <= one["p95_ms"] < 1000
    assert one["rps"] > 0
    many = pages.concurrent(port, "/slow", {}, clients=5, seconds=0.3)
    assert many["clients"] == 5 and many["ok"] >= 5 and many["errors"] == 0
    # five clients in parallel do more than one would in the same time
    assert many["rps"] > 1000 / one["p50_ms"] * 1.5
    bad = pages.sequential(port, "/broken", {}, requests=5, seconds=5)
    assert bad["ok"] == 0 and bad["errors"] == 5 and bad["p95_ms"] is None
    assert bad["error_examples"][0] == "HTTP 500"


def test_sequential_stops_after_its_seconds_but_not_before_the_minimum(port):
    result = pages.sequential(port, "/slow", {}, requests=1000, seconds=0.01)
    assert result["requests"] == pages.MIN_SEQUENTIAL


def test_login_goes_through_the_form_and_its_csrf_token(port):
    cookie = pages.login(port, "office-41", "right")
    assert "session=good" in cookie
    with pytest.raises(RuntimeError, match="could not log in as office-41"):
        pages.login(port, "office-41", "wrong")
    assert pages.api_token(port, "office-41", "right") == "t0k"


def test_run_pages_times_only_what_answers_200_and_reports_ratios_and_targets(port):
    page_list = [
        pages.Page("healthz", "/healthz", "/healthz"),
        pages.Page("province", "/private (logged in)", "/private", "office-41", provincial=True),
        pages.Page("api_tasks", "the API", "/api", "office-41", bearer=True, provincial=True),
        pages.Page("street", "/private (anonymous: a redirect)", "/private"),
        pages.Page("dashboard_export", "a download", "/slow", "office-41", provincial=True, download=True,
                   target_one=None),
    ]
    headers = pages.sign_in(port, page_list, "right")
    out = pages.run_pages(port, page_list, headers, clients=3, seconds=0.2, requests=5, log=lambda _line: None)
    by_key = {p["key"]: p for p in out["pages"]}
    assert by_key["healthz"]["one"]["p95_ratio"] == 1.0
    assert by_key["province"]["one"]["ok"] == 5 and by_key["province"]["many"]["errors"] == 0
    assert by_key["api_tasks"]["many"]["ok"] > 0
    # The anonymous request to a private page answered a redirect: reported, never timed.
    assert by_key["street"]["status"] == 302 and "one" not in by_key["street"]
    assert "not timed" in by_key["street"]["error"]
    # a download is timed like the others, with its ratio (no ordering asserted: on a loaded machine
    # /healthz's p95 can reach the 20 ms of /slow)
    assert by_key["dashboard_export"]["one"]["ok"] == 5 and by_key["dashboard_export"]["one"]["p95_ratio"] > 0
    assert "one" in out["healthz_again"]

    table = pages.markdown(out)
    assert "| /private (anonymous: a redirect) | answered 302 before timing: not timed |" in table
    assert "none (a download)" in table
    assert "≥ 60/s **missed**" not in table.split("| a download |")[1].split("\n")[0]  # a download has no rps target
    assert "Before (issue 9" in table and "| `/province/41/` | 88 ms | 15.7 | 1,782 ms | 12.7 |" in table
    # the run's own figures sit next to the "before" row
    province_before = next(line for line in table.splitlines() if line.startswith("| `/province/41/` | 88 ms"))
    assert province_before.endswith(f"{by_key['province']['many']['rps']} |")


def test_a_broken_connection_counts_as_an_error_not_a_crash():
    with pages_socket_closed() as closed_port:
        result = pages.sequential(closed_port, "/healthz", {}, requests=5, seconds=1)
    assert result["ok"] == 0 and result["errors"] == 5
    assert result["error_examples"][0] in ("ConnectionRefusedError", "RemoteDisconnected", "ConnectionResetError")


class pages_socket_closed:
    """A port nobody listens on."""

    def __enter__(self) -> int:
        return pages.free_port()

    def __exit__(self, *exc) -> None:
        pass


def test_the_big_download_as_a_job_posts_the_form_polls_the_page_and_counts_the_files_rows(port):
    cookie = pages.login(port, "office-41", "right")
    out = pages.measure_export_job(port, cookie, "/tasks/export.xlsx?scope=subtree", poll=0, timeout=30,
                                   sheet="任务清单", log=lambda _line: None)
    assert "error" not in out, out
    assert out["job_id"] == 7 and out["job_page"] == "/tasks/export/7" and out["state"] == "done"
    assert out["rows"] == 3  # the title and header rows are not counted, nor the second sheet's
    # each value once, in order, with the words before it
    assert out["progress_seen"] == [[0, None, "正在生成…"], [200, 1000, "正在生成…"], [1000, 1000, "正在生成…"]]
    assert out["polls"] == len(JOB_PAGES) and out["post_to_done_s"] >= 0 and out["download_s"] >= 0


def test_the_job_measurement_reports_a_refused_form_instead_of_polling(port):
    # Logged out: the page asking for the job is not served, so nothing is posted.
    out = pages.measure_export_job(port, "session=anon", "/tasks/export.xlsx?scope=subtree", poll=0, timeout=1,
                                   log=lambda _line: None)
    assert out == {"error": "GET /tasks/export.xlsx?scope=subtree answered 404"}
    assert not Handler.posted


def test_a_redirect_to_something_else_than_a_job_page_is_reported_not_polled_for_ever(port):
    cookie = pages.login(port, "office-41", "right")
    Handler.job_page = "/healthz"  # as when the list has become short: the POST answers the file's URL
    try:
        out = pages.measure_export_job(port, cookie, "/tasks/export.xlsx?scope=subtree", poll=0, timeout=30,
                                       log=lambda _line: None)
    finally:
        Handler.job_page = "/tasks/export/7"
    assert out["error"].startswith("/healthz is not a file job's page") and out["job_page"] == "/healthz"


def test_job_state_reads_the_job_pages_and_the_ask_form():
    assert pages.ask_form(ASK_PAGE) == ("/tasks/export.xlsx?scope=subtree&status=", "job-token")
    with pytest.raises(ValueError):
        pages.ask_form(b"<form method='post' action='/login'></form>")
    assert pages.job_state(running("400", "20000")) == {
        "state": "running", "done": 400, "total": 20000, "stage": "正在生成…", "download": None, "applied": None, "refused": False,
        "error": None}
    assert pages.job_state(JOB_PAGES[-1])["download"] == "/tasks/export/7/download"
    upload_done = ('<div id="file-job-state" data-state="done"><p class="mb-2 text-success" id="file-job-applied">'
                   "已登记 10000 项活动。</p></div>")
    assert pages.job_state(upload_done)["applied"] == 10000
    refused = ('<div id="file-job-state" data-state="done"><p class="mb-2 text-danger" role="alert" '
               'id="file-job-refused">未保存：表中有 2 处问题。</p></div>')
    assert pages.job_state(refused)["refused"] and pages.job_state(refused)["applied"] is None
    failed = ('<div id="file-job-state" data-state="failed"><p class="mb-2 text-danger" role="alert" '
              'id="file-job-failed">无法完成（磁盘已满 &amp; 其他）。</p></div>')
    assert pages.job_state(failed)["error"] == "无法完成（磁盘已满 & 其他）。"
    assert pages.job_state(b"<html>no job here</html>")["state"] is None


def test_xlsx_rows_counts_the_rows_with_an_id_and_refuses_what_is_not_a_workbook():
    data = workbook([["title"], ["编号"], [1, "x"], [None, "note"], ["2", "text id"], [3]])
    assert pages.xlsx_rows(data) == 2
    assert pages.xlsx_rows(data, "进度报送") == 1
    with pytest.raises(Exception):
        pages.xlsx_rows(b"<html>not a workbook</html>")
