"""The page stage of ``make bench`` (bench/pages.py) against a tiny server on 127.0.0.1, for about a
second: its load generator counts answers and errors, logs in through a form with a CSRF token,
refuses to time a page that does not answer 200, and reports ratios and targets."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import pages


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

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
        elif self.path == "/api/v1/tokens":
            self._send(201, json.dumps({"token": "t0k"}).encode(), {"Content-Type": "application/json"})
        else:
            self._send(404, b"no")


@pytest.fixture
def port():
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
        pages.Page("tasks_export", "a download", "/slow", "office-41", provincial=True, download=True,
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
    assert by_key["tasks_export"]["one"]["p95_ratio"] > 1  # 20 ms against a few
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
