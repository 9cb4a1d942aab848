"""The Python worker against a real greyd: the lease protocol, concurrency, errors, cancellation, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Greyd

from grey_client import Client, InvalidArgument, Job, PermanentError, RetryableError, Spec, Worker
from grey_client.models import RetryPolicy

SDK = Path(__file__).resolve().parents[1]


@contextmanager
def running(w: Worker) -> Iterator[threading.Thread]:
    th = threading.Thread(target=w.run, kwargs={"install_signal_handlers": False})
    th.start()
    try:
        yield th
    finally:
        w.stop()
        th.join(60)
        assert not th.is_alive(), "worker did not stop"


def test_resize_tasks_run_concurrently(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        w = Worker(c, concurrency=8, heartbeat_interval=0.2)
        active, peak = [0], [0]
        lock = threading.Lock()

        @w.task("resize")
        def resize(job: Job) -> dict[str, Any]:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.2)
            with lock:
                active[0] -= 1
            return {"width": job.payload["width"] // 2, "attempt": job.attempt, "tenant": job.tenant_id}

        with running(w):
            ts = c.submit_batch([Spec(kind="resize", payload={"width": 100 + i}) for i in range(16)])
            done = [c.wait(t.id, timeout=30) for t in ts]
        assert [d.status for d in done] == ["completed"] * 16
        assert [d.result for d in done] == [
            {"width": (100 + i) // 2, "attempt": 1, "tenant": tenant} for i in range(16)
        ]
        assert peak[0] > 1, "tasks did not run concurrently"
        assert peak[0] <= 8
        # the attempts name this worker
        assert all(d.attempts and d.attempts[-1].worker_id == w.worker_id for d in done)


def test_permanent_and_retryable_errors(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        w = Worker(c, concurrency=4)
        calls: dict[str, int] = {}

        @w.task("pyfail")
        def fail(job: Job) -> Any:
            calls[job.task_id] = calls.get(job.task_id, 0) + 1
            mode = job.payload["mode"]
            if mode == "permanent":
                raise PermanentError("bad input", code="bad_input")
            if mode == "retryable" and job.attempt < 3:
                raise RetryableError("flaky", code="flaky")
            if mode == "crash":
                raise KeyError("boom")
            if mode == "unencodable":
                return {1, 2}
            return {"ok": job.attempt}

        fast = RetryPolicy(max_retries=3, base_delay="10ms", max_delay="20ms")
        with running(w):
            perm = c.submit(Spec(kind="pyfail", payload={"mode": "permanent"}, retry=fast))
            retr = c.submit(Spec(kind="pyfail", payload={"mode": "retryable"}, retry=fast))
            crash = c.submit(
                Spec(kind="pyfail", payload={"mode": "crash"}, retry=RetryPolicy(max_retries=1, base_delay="10ms"))
            )
            enc = c.submit(Spec(kind="pyfail", payload={"mode": "unencodable"}, retry=fast))
            p, r, k, e = (c.wait(t.id, timeout=30) for t in (perm, retr, crash, enc))
        assert p.status == "failed" and p.error is not None
        assert p.error.code == "bad_input" and not p.error.retryable and calls[perm.id] == 1
        assert r.status == "completed" and r.result == {"ok": 3} and calls[retr.id] == 3
        assert k.status == "failed" and k.error is not None and k.error.retryable and calls[crash.id] == 2
        assert "KeyError" in k.error.message
        assert e.status == "failed" and e.error is not None and not e.error.retryable and calls[enc.id] == 1


def test_cancel_reaches_a_running_handler(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        w = Worker(c, concurrency=2, heartbeat_interval=0.1)
        started = threading.Event()
        saw_cancel: list[str] = []

        @w.task("pyslow")
        def slow(job: Job) -> Any:
            started.set()
            if job.cancelled.wait(20):
                saw_cancel.append(job.cancel_reason)
            return "late"

        with running(w):
            t = c.submit(Spec(kind="pyslow"))
            assert started.wait(20)
            c.cancel(t.id)
            deadline = time.monotonic() + 10
            while not saw_cancel and time.monotonic() < deadline:
                time.sleep(0.05)
        assert saw_cancel == ["cancelled"]
        assert c.get(t.id).status == "cancelled"
        assert w.stats["lost"] == 1


def test_timeout_fails_the_attempt(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        w = Worker(c, concurrency=1, heartbeat_interval=0.1)

        @w.task("pyslow")
        def slow(job: Job) -> Any:
            job.cancelled.wait(job.timeout + 2)
            return "too late"

        with running(w):
            t = c.submit(Spec(kind="pyslow", timeout="500ms", retry=RetryPolicy(max_retries=0)))
            done = c.wait(t.id, timeout=30)
        assert done.status == "failed" and done.error is not None and done.error.code == "timeout"


def test_no_handlers_refused(greyd: Greyd) -> None:
    with Client(greyd.url) as c:
        with pytest.raises(InvalidArgument):
            Worker(c).run(install_signal_handlers=False)
        w = Worker(c, kinds=["resize"])
        w.handle("other", lambda j: None)
        with pytest.raises(InvalidArgument):
            w.run(install_signal_handlers=False)


WORKER_SCRIPT = """
import sys, time
from grey_client import Client, Worker
c = Client(sys.argv[1], tenant=sys.argv[2])
w = Worker(c, concurrency=2, shutdown_grace=float(sys.argv[3]))

@w.task("pyslow")
def slow(job):
    print("started", job.task_id, flush=True)
    time.sleep(job.payload["sleep"])
    return {"slept": job.payload["sleep"]}

print("ready", flush=True)
w.run()
print("stopped", flush=True)
"""


def _spawn(greyd: Greyd, tenant: str, grace: float, tmp: Path) -> subprocess.Popen[str]:
    script = tmp / "w.py"
    script.write_text(WORKER_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(SDK / "src"))
    return subprocess.Popen([sys.executable, str(script), greyd.url, tenant, str(grace)],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _wait_line(p: subprocess.Popen[str], prefix: str) -> str:
    assert p.stdout is not None
    while True:
        line = p.stdout.readline()
        if not line:
            raise AssertionError(f"worker exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line


def test_sigterm_finishes_in_flight_and_stops_leasing(greyd: Greyd, tenant: str, tmp_path: Path) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        p = _spawn(greyd, tenant, 30, tmp_path)
        try:
            _wait_line(p, "ready")
            t = c.submit(Spec(kind="pyslow", payload={"sleep": 2.5}))
            _wait_line(p, "started")
            p.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the signal reached the worker; its task still runs
            later = c.submit(Spec(kind="pyslow", payload={"sleep": 0}))
            _wait_line(p, "stopped")
            assert p.wait(30) == 0
        finally:
            p.kill()
        done = c.get(t.id)
        assert done.status == "completed" and done.result == {"slept": 2.5}
        # leasing stopped: the task submitted after SIGTERM is still pending
        assert c.get(later.id).status == "pending"
        c.cancel(later.id)


def test_sigterm_grace_over_releases_the_task(greyd: Greyd, tenant: str, tmp_path: Path) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        p = _spawn(greyd, tenant, 0.3, tmp_path)
        try:
            _wait_line(p, "ready")
            t = c.submit(
                Spec(kind="pyslow", payload={"sleep": 30}, retry=RetryPolicy(max_retries=2, base_delay="10ms"))
            )
            _wait_line(p, "started")
            p.send_signal(signal.SIGTERM)
            _wait_line(p, "stopped")
            assert p.wait(30) == 0
        finally:
            p.kill()
        got = c.get(t.id)
        # released as a retryable failure: waiting for another attempt, not lost until the lease expires
        assert got.status in ("retrying", "pending"), got.status
        assert got.attempts and got.attempts[0].error is not None
        assert got.attempts[0].error.code == "worker_shutdown"
        c.cancel(t.id)


def test_second_signal_quits_at_once(greyd: Greyd, tenant: str, tmp_path: Path) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        p = _spawn(greyd, tenant, 30, tmp_path)
        try:
            _wait_line(p, "ready")
            t = c.submit(Spec(kind="pyslow", payload={"sleep": 30}))
            _wait_line(p, "started")
            p.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            began = time.monotonic()
            p.send_signal(signal.SIGTERM)
            code = p.wait(10)
            assert time.monotonic() - began < 5
            assert code != 0  # KeyboardInterrupt out of run()
        finally:
            p.kill()
        c.cancel(t.id)
