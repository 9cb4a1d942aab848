"""A worker that runs task handlers with the Go workers' lease protocol.

The protocol (``worker.Pool`` in Go, routes ``/api/v1/workers/*``):

- **lease**: ``POST /workers/lease`` asks for up to as many tasks as there are
  free slots, of the handlers' kinds, long-polling up to ``lease_wait``;
- **start**: each task is reported ``running`` as it starts;
- **heartbeat**: every ``heartbeat_interval`` the leases held are sent to
  ``POST /workers/heartbeat``; the server extends them and names those lost
  (cancelled, expired), whose jobs get ``job.cancelled`` set and whose
  outcome is never reported;
- **report**: outcomes go to ``POST /workers/complete`` in batches (what
  queued while the last call was in flight), each fenced by its attempt;
  a batch that fails with a transient error is retried for up to a minute;
- **proofs**: with a signing key, completed attempts whose lease asked
  (``prove``) are signed per tenant, up to 64 per statement, after waiting
  ``proof_linger`` for more; the key is registered first through
  ``POST /cluster/join`` as a worker-only node, as greyd's worker nodes do;
- **shutdown**: :meth:`Worker.stop` (and SIGTERM/SIGINT under :meth:`Worker.run`)
  stops leasing; running handlers get ``shutdown_grace`` to finish; those
  still running then are released as retryable ``worker_shutdown`` failures.
  A second signal raises KeyboardInterrupt out of :meth:`Worker.run` at once
  (the leases of tasks still running then expire and they are retried).

Handlers are plain functions ``fn(job) -> result`` run on ``concurrency``
threads; the result must be JSON-serialisable. Raise :class:`PermanentError`
for a failure that must not be retried; any other exception is a retryable
failure (code ``executor``, or the exception's ``code`` attribute).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import inspect
import json
import logging
import os
import queue
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import proof as _proof
from ._base import jittered
from .client import Client
from .errors import GreyError, InvalidArgument, Unavailable, error_from_body
from .models import Assignment, format_time, from_json, parse_duration

__all__ = ["Handler", "Job", "PermanentError", "RetryableError", "Worker"]

log = logging.getLogger("grey_client.worker")

VERSION = "0.1.0"


class PermanentError(Exception):
    """A failure that another attempt cannot fix: the task fails without retries."""

    def __init__(self, message: str, *, code: str = "executor") -> None:
        super().__init__(message)
        self.code = code


class RetryableError(Exception):
    """A failure another attempt may not hit (the default for any exception)."""

    def __init__(self, message: str, *, code: str = "executor") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Job:
    """One leased attempt as a handler sees it."""

    task_id: str
    tenant_id: str
    kind: str
    attempt: int
    payload: Any
    headers: dict[str, str]
    timeout: float
    """Seconds the attempt may run (0: no limit)."""
    principal: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when the lease was lost (cancelled, expired), the timeout passed, or shutdown's grace ended:
    a long handler should check it and return."""
    cancel_reason: str = ""


Handler = Callable[[Job], Any]
H = TypeVar("H", bound=Handler)

_STOP = object()


@dataclass
class _Running:
    job: Job
    assignment: Assignment
    has_payload: bool
    started: datetime
    started_mono: float
    lost: bool = False
    released: bool = False


@dataclass
class _Report:
    body: dict[str, Any]
    tenant: str = ""
    run: _proof.Run | None = None


class Worker:
    """Leases tasks of its handlers' kinds from the cluster and runs them.

    >>> w = Worker(Client("http://127.0.0.1:8080"), concurrency=8)
    >>> @w.task("resize")
    ... def resize(job: Job) -> dict[str, int]:
    ...     return {"width": job.payload["width"] // 2}
    >>> w.run()  # until SIGTERM / SIGINT / w.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Client,
        kinds: Iterable[str] | None = None,
        *,
        concurrency: int = 16,
        worker_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        lease_wait: float = 30.0,
        heartbeat_interval: float = 1.0,
        shutdown_grace: float = 30.0,
        max_report_batch: int = 1000,
        key: _proof.SigningKey | None = None,
        key_file: str | os.PathLike[str] | None = None,
        node_id: str | None = None,
        proof_linger: float = 0.002,
    ) -> None:
        self.client = client
        self.kinds = sorted(set(kinds)) if kinds else []
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 16):04x}"
        self.labels = dict(labels or {})
        self.lease_wait = lease_wait
        self.heartbeat_interval = heartbeat_interval
        self.shutdown_grace = shutdown_grace
        self.max_report_batch = max_report_batch
        if key is None and key_file is not None:
            key = _proof.SigningKey.load_or_create(key_file)
        self.key = key
        self.node_id = node_id or ("py-" + self.worker_id)[:64]
        self.proof_linger = proof_linger
        self.handlers: dict[str, Handler] = {}
        self._measure: dict[str, dict[str, str]] = {}

        self._stop = threading.Event()
        self._poller = _LeasePoller(client)
        self._mu = threading.Lock()
        self._free = threading.Condition(self._mu)
        self._slots = 0
        self._active: dict[str, _Running] = {}
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._reports: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: Counters (for tests and benchmarks): tasks finished by outcome.
        self.stats = {"completed": 0, "failed": 0, "released": 0, "lost": 0}

    # -- registration ----------------------------------------------------------

    def task(self, kind: str) -> Callable[[H], H]:
        """Decorator registering the function as the handler of ``kind``."""

        def deco(fn: H) -> H:
            self.handle(kind, fn)
            return fn

        return deco

    def handle(self, kind: str, fn: Handler) -> None:
        """Register ``fn`` as the handler of ``kind`` (before :meth:`run`)."""
        self.handlers[kind] = fn
        self._measure[kind] = _measure(fn)

    # -- running ------------------------------------------------------------------

    def stop(self) -> None:
        """Stop leasing and drain: running tasks get ``shutdown_grace`` to finish. Safe from any thread
        and from a signal handler: the lease long poll in flight is aborted, so the server leases nothing more."""
        self._stop.set()
        self._poller.abort()
        with self._free:
            self._free.notify_all()

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Lease and run tasks until :meth:`stop` (or SIGTERM / SIGINT when ``install_signal_handlers`` and
        called on the main thread), then drain and return."""
        kinds = self.kinds or sorted(self.handlers)
        if not kinds:
            raise InvalidArgument("worker: no handlers registered", field="kinds")
        for k in kinds:
            if k not in self.handlers:
                raise InvalidArgument(f"worker: no handler for kind {k!r}", field="kinds")
        previous: dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, frame: FrameType | None) -> None:
                if self._stop.is_set():
                    # a second signal: stop waiting for running handlers
                    raise KeyboardInterrupt
                log.info("signal %d: stopping (finishing running tasks; again to quit now)", signum)
                self.stop()

            for s in (signal.SIGTERM, signal.SIGINT):
                previous[s] = signal.signal(s, on_signal)
        try:
            self._run(kinds)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _run(self, kinds: list[str]) -> None:
        if self.key is not None:
            self._register_key()
        self._slots = self.concurrency
        runners = [
            threading.Thread(target=self._runner, name=f"grey-worker-{i}", daemon=True) for i in range(self.concurrency)
        ]
        for t in runners:
            t.start()
        reporter = threading.Thread(target=self._report_loop, name="grey-reporter", daemon=True)
        reporter.start()
        hb_stop = threading.Event()
        hb = threading.Thread(target=self._heartbeat_loop, args=(hb_stop,), name="grey-heartbeat", daemon=True)
        hb.start()

        self._lease_loop(kinds)

        # Drain: wait for running tasks up to the grace period.
        deadline = time.monotonic() + self.shutdown_grace
        with self._free:
            while self._slots < self.concurrency and time.monotonic() < deadline:
                self._free.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            still = [r for r in self._active.values() if not r.lost and not r.released]
            for r in still:
                r.released = True
                r.job.cancel_reason = "worker shutting down"
                r.job.cancelled.set()
        for r in still:
            log.warning("shutdown grace over; releasing task %s", r.job.task_id)
            self.stats["released"] += 1
            self._reports.put(
                _Report(
                    self._failure(r, "worker_shutdown", True, "released: worker shut down before the task finished")
                )
            )
        for _ in runners:
            self._jobs.put(_STOP)
        hb_stop.set()
        hb.join()
        self._reports.put(_STOP)
        reporter.join()

    def _register_key(self) -> None:
        assert self.key is not None
        delay = 0
        while not self._stop.is_set():
            try:
                self.client.join_worker(self.node_id, self.key.public_raw(), self.labels)
                log.info("registered proof key %s as node %s", self.key.key_id, self.node_id)
                return
            except GreyError as e:
                if not e.transient:
                    raise
                delay += 1
                self._stop.wait(jittered(delay))

    def _lease_loop(self, kinds: list[str]) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._free:
                while self._slots == 0 and not self._stop.is_set():
                    self._free.wait()
                if self._stop.is_set():
                    return
                free = self._slots
                self._slots = 0
            body: dict[str, Any] = {
                "worker_id": self.worker_id,
                "kinds": kinds,
                "max": free,
                "wait": f"{self.lease_wait:g}s",
                "platform": "software",
            }
            if self.labels:
                body["labels"] = self.labels
            try:
                raw = self._poller.lease(body, self.lease_wait + 30.0)
            except GreyError as e:
                self._give_back(free)
                if self._stop.is_set():
                    return
                failures += 1
                d = jittered(failures)
                log.warning("lease failed: %s; retrying in %.2fs", e, d)
                self._stop.wait(d)
                continue
            failures = 0
            tasks = raw.get("tasks") or []
            self._give_back(free - len(tasks))
            for t in tasks:
                self._jobs.put(t)

    def _give_back(self, n: int) -> None:
        if n <= 0:
            return
        with self._free:
            self._slots += n
            self._free.notify_all()

    def _runner(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            try:
                self._execute(item)
            except Exception:  # a bug here must not kill the runner
                log.exception("worker: executing a task failed")
            finally:
                self._give_back(1)

    def _execute(self, raw: dict[str, Any]) -> None:
        a = from_json(Assignment, raw)
        timeout = parse_duration(a.timeout) if a.timeout else 0.0
        job = Job(
            task_id=a.task_id,
            tenant_id=a.tenant_id,
            kind=a.kind,
            attempt=a.attempt,
            payload=a.payload,
            headers=dict(a.headers or {}),
            timeout=timeout,
            principal=a.principal or "",
        )
        now = datetime.now(timezone.utc)
        run = _Running(job, a, "payload" in raw, now, time.monotonic())
        with self._mu:
            self._active[a.task_id] = run
        self._reports.put(
            _Report({"task_id": a.task_id, "attempt": a.attempt, "status": "running", "at": format_time(now)})
        )
        try:
            err: BaseException | None = None
            result: Any = None
            try:
                result = self.handlers[a.kind](job)
            except Exception as e:
                err = e
            with self._mu:
                self._active.pop(a.task_id, None)
            if run.lost or run.released:
                return  # the server refuses any outcome of a lost lease
            elapsed = time.monotonic() - run.started_mono
            if timeout > 0 and elapsed > timeout:
                self._reports.put(
                    _Report(self._failure(run, "timeout", True, f"attempt exceeded its timeout ({a.timeout})"))
                )
                self.stats["failed"] += 1
                return
            if err is not None:
                retryable = not isinstance(err, PermanentError)
                code = getattr(err, "code", None)
                self._reports.put(
                    _Report(
                        self._failure(
                            run,
                            code if isinstance(code, str) and code else "executor",
                            retryable,
                            f"{type(err).__name__}: {err}",
                        )
                    )
                )
                self.stats["failed"] += 1
                return
            self._complete(run, result)
        finally:
            with self._mu:
                self._active.pop(a.task_id, None)

    def _complete(self, run: _Running, result: Any) -> None:
        a = run.assignment
        try:
            out = b"" if result is None else json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as e:
            self._reports.put(_Report(self._failure(run, "executor", False, f"encode result: {e}")))
            self.stats["failed"] += 1
            return
        finished = datetime.now(timezone.utc)
        body: dict[str, Any] = {
            "task_id": a.task_id,
            "attempt": a.attempt,
            "status": "completed",
            "at": format_time(finished),
        }
        if result is not None:
            body["result"] = result
        rep = _Report(body, tenant=a.tenant_id)
        if a.prove and self.key is not None:
            payload = _proof.canonicalize(a.payload) if run.has_payload else b""
            objects: list[dict[str, Any]] = []
            if a.payload_object is not None:
                po = a.payload_object
                objects.append({"name": po.ref, "role": "payload", "size": po.size, "digest": {"sha256": po.sha256}})
            if a.result_inline_max > 0 and len(out) > a.result_inline_max:
                objects.append(
                    {
                        "name": "results/" + a.task_id,
                        "role": "result",
                        "size": len(out),
                        "digest": {"sha256": hashlib.sha256(out).hexdigest()},
                    }
                )
            rep.run = _proof.Run(
                task_id=a.task_id,
                kind=a.kind,
                payload=payload,
                output=out,
                attempt=a.attempt,
                executor=self._measure.get(a.kind, {}),
                started_at=run.started,
                finished_at=finished,
                leased_by=a.principal or "",
                objects=objects,
            )
        self.stats["completed"] += 1
        self._reports.put(rep)

    @staticmethod
    def _failure(run: _Running, code: str, retryable: bool, message: str) -> dict[str, Any]:
        return {
            "task_id": run.job.task_id,
            "attempt": run.job.attempt,
            "status": "failed",
            "error": {"message": message, "retryable": retryable, "code": code},
            "at": format_time(datetime.now(timezone.utc)),
        }

    # -- heartbeats ------------------------------------------------------------------

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            now = time.monotonic()
            with self._mu:
                refs = [{"task_id": r.job.task_id, "attempt": r.job.attempt} for r in self._active.values()]
                for r in self._active.values():
                    if r.job.timeout > 0 and now - r.started_mono > r.job.timeout and not r.job.cancelled.is_set():
                        r.job.cancel_reason = "timeout"
                        r.job.cancelled.set()
            if not refs:
                continue
            try:
                resp = self.client.heartbeat({"worker_id": self.worker_id, "leases": refs})
            except GreyError as e:
                log.warning("heartbeat failed: %s", e)
                continue
            with self._mu:
                for lost in resp.lost:
                    held = self._active.get(lost.task_id)
                    if held is not None and held.job.attempt == lost.attempt:
                        held.lost = True
                        held.job.cancel_reason = lost.reason
                        held.job.cancelled.set()
                        self.stats["lost"] += 1

    # -- reports -------------------------------------------------------------------------

    def _report_loop(self) -> None:
        done = False
        while not done:
            first = self._reports.get()
            if first is _STOP:
                return
            batch: list[_Report] = [first]
            done = self._collect(batch, 0.0)
            if not done and self.key is not None and self.proof_linger > 0 and any(r.run for r in batch):
                done = self._collect(batch, self.proof_linger)
            self._send(batch)

    def _collect(self, batch: list[_Report], wait: float) -> bool:
        """Add queued reports to batch (those arriving within wait); True when the stop marker came."""
        deadline = time.monotonic() + wait
        while len(batch) < self.max_report_batch:
            try:
                if wait > 0:
                    rem = deadline - time.monotonic()
                    if rem <= 0:
                        return False
                    r = self._reports.get(timeout=rem)
                else:
                    r = self._reports.get_nowait()
            except queue.Empty:
                return False
            if r is _STOP:
                return True
            batch.append(r)
        return False

    def _prove(self, batch: list[_Report]) -> list[dict[str, Any]]:
        assert self.key is not None
        proofs: list[dict[str, Any]] = []
        groups: dict[str, list[_Report]] = {}
        for r in batch:
            if r.run is not None:
                groups.setdefault(r.tenant, []).append(r)
        for tenant, reps in groups.items():
            for i in range(0, len(reps), _proof.MAX_BATCH):
                chunk = reps[i : i + _proof.MAX_BATCH]
                try:
                    env = _proof.sign(self.key, tenant, self.node_id, [r.run for r in chunk if r.run is not None])
                except Exception as e:
                    log.error("signing proofs failed; the attempts fail and will be retried: %s", e)
                    for r in chunk:
                        r.body["status"] = "failed"
                        r.body.pop("result", None)
                        r.body["error"] = {
                            "code": "proof_error",
                            "retryable": True,
                            "message": f"signing the proof failed: {e}",
                        }
                    continue
                proofs.append(env)
                for r in chunk:
                    r.body["proof"] = len(proofs)
        return proofs

    def _send(self, batch: list[_Report]) -> None:
        body: dict[str, Any] = {"worker_id": self.worker_id, "reports": [r.body for r in batch]}
        if self.key is not None:
            proofs = self._prove(batch)
            if proofs:
                body["proofs"] = proofs
        deadline = time.monotonic() + 60.0
        n = 0
        while True:
            n += 1
            try:
                resp = self.client.complete(body)
            except GreyError as e:
                if isinstance(e, InvalidArgument) or time.monotonic() > deadline:
                    log.error(
                        "reports dropped (%d); the leases will expire and the tasks be retried: %s", len(batch), e
                    )
                    return
                time.sleep(jittered(n))
                continue
            for res in resp.results:
                if not res.accepted:
                    log.debug("report refused: %s %s", res.task_id, res.reason)
            return


class _LeasePoller:
    """The lease long poll on a connection of its own, so that :meth:`Worker.stop` can abort it.

    httpx cannot interrupt a request blocked in another thread; shutting the
    socket down can, and the server then sees the client gone and leases
    nothing (as a Go worker's cancelled context does).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._server = -1
        self._aborted = False

    def abort(self) -> None:
        self._aborted = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def lease(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        core = self.client._core
        data = json.dumps(body, separators=(",", ":")).encode()
        last: GreyError | None = None
        for idx in core.order():
            base = urlsplit(core.servers[idx])
            with self._lock:
                if self._conn is None or self._server != idx:
                    if self._conn is not None:
                        self._conn.close()
                    cls = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
                    self._conn = cls(base.netloc, timeout=timeout)
                    self._server = idx
                conn = self._conn
            if self._aborted:
                raise Unavailable("worker stopping")
            try:
                conn.request("POST", base.path + "/api/v1/workers/lease", body=data, headers=core.headers(True))
                resp = conn.getresponse()
                content = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                last = Unavailable(f"POST /api/v1/workers/lease: {base.netloc} did not answer: {e}")
                continue
            if resp.status == 503:
                last = error_from_body(resp.status, content, resp.getheader("Retry-After"))
                continue
            core.preferred = idx
            if resp.status != 200:
                raise error_from_body(resp.status, content, resp.getheader("Retry-After"))
            out: dict[str, Any] = json.loads(content)
            return out
        assert last is not None
        raise last


def _measure(fn: Handler) -> dict[str, str]:
    """What a proof names as having run a handler: this SDK and the SHA-256 of the handler's source file."""
    digest = "unknown"
    try:
        src = inspect.getsourcefile(fn)
        if src:
            with open(src, "rb") as f:
                digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
    except (OSError, TypeError):
        pass
    name = getattr(fn, "__qualname__", "handler")
    return {"name": f"grey-python-worker:{name}", "version": VERSION, "digest": digest}
