"""The suite's RQ worker processes, started from a warm fork server.

``run_jobs`` runs a real worker process (``jobs.worker.main(["--burst"])``, the same entry point
as ``python -m jobs.worker --burst``) against the real Redis and database. Started with a fresh
interpreter, each such process spent about a second importing Flask, SQLAlchemy, RQ and the
portal before it looked at the queue, and the suite starts a few hundred of them on PostgreSQL.
Here they are forked from a server process (multiprocessing's ``forkserver``) that imported all
that once: each worker is still its own process, with its own app, database connections and
Redis connection, started from the environment it is given.

The server imports modules whose constants read the environment at import time (``jobs.worker``,
``jobs.recovery``): a worker asked for with another environment than the server's (a test that
changed ``os.environ`` or passes overrides) is started as a fresh interpreter instead.
"""
from __future__ import annotations

import multiprocessing
import os
import pkgutil
import sys
import tempfile
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_context = None
_server_env: Optional[dict] = None


def _preload() -> list[str]:
    import jobs
    import portal.blueprints

    names = ["tests.worker_server", "rq", "jobs", "jobs.worker", "portal", "portal.models"]
    names += [f"jobs.{m.name}" for m in pkgutil.iter_modules(jobs.__path__)]
    names += [f"portal.blueprints.{m.name}" for m in pkgutil.iter_modules(portal.blueprints.__path__)]
    return names


#: Set by pytest for every test (its name): not read by the portal or the worker.
_PER_TEST = ("PYTEST_CURRENT_TEST",)


def _relevant(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in _PER_TEST}


def can_serve(env: dict) -> bool:
    """Whether a worker with this environment may come from the fork server."""
    return _server_env is None or _relevant(env) == _server_env


def _burst(env: dict, output: str, cwd: str) -> None:
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(cwd)  # where `python -m jobs.worker` runs: the repository
    os.environ.clear()
    os.environ.update(env)
    from jobs.worker import main

    code = main(["--burst"])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code or 0)


def run_burst(env: dict, timeout: float) -> tuple[int, str]:
    """A burst worker forked from the server: (exit status, what it printed)."""
    global _context, _server_env
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_preload())
        # The server starts with this process's environment; ``env`` is it with the suite's SECRET_KEY.
        _server_env = _relevant(env)
    with tempfile.NamedTemporaryFile(prefix="portal-worker-", suffix=".log", delete=False) as fh:
        output = fh.name
    try:
        process = _context.Process(target=_burst, args=(env, output, ROOT), name="rq-burst-worker")
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise TimeoutError(f"the burst worker did not finish within {timeout} s")
        with open(output, encoding="utf-8", errors="replace") as fh:
            printed = fh.read()
        if process.exitcode and not printed:
            printed = "the forked worker failed before its output was captured: see the fork server's stderr"
        return process.exitcode, printed
    finally:
        os.unlink(output)
