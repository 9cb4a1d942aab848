"""The synchronous client."""

from __future__ import annotations

import builtins
import json as _json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from . import proof as _proof
from ._base import (
    DEFAULT_INLINE_LIMIT,
    DEFAULT_USER_AGENT,
    Backoff,
    Core,
    ListFilter,
    SpecLike,
    absolute,
    can_fail_over,
    check_stored,
    decode_error,
    large_payload,
    spec_json,
    task_path,
    transient,
    unavailable,
)
from .errors import GreyError, Internal, WaitTimeout
from .models import (
    CompleteResponse,
    HeartbeatResponse,
    LeaseResponse,
    NodeKey,
    ProofRecord,
    Replay,
    Task,
    TaskPage,
    format_duration,
    from_json,
)

__all__ = ["Client"]


class Client:
    """A client of a Grey cluster over HTTP, safe to share between threads.

    ``servers`` is a comma-separated list (or a sequence) of base URLs; a
    request goes to the server that answered last and fails over to the
    others on a 503 or when no connection could be made (any method), or on
    any transport error for GET and DELETE, as the Go client does.

    Credentials (one at most): ``token`` (a bearer token: OIDC access token,
    admin token), ``api_key`` (``grey_<id>_<secret>``, checked here),
    ``token_provider`` (called before every request, e.g. :class:`FileToken`).
    ``tenant`` is sent as ``X-Grey-Tenant``; without it the server uses the
    principal's only tenant or ``default``.
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        tenant: str | None = None,
        token: str | None = None,
        api_key: str | None = None,
        token_provider: Callable[[], str] | None = None,
        timeout: float = 30.0,
        wait_poll: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        http_client: httpx.Client | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        self._core = Core(
            servers, tenant=tenant, token=token, api_key=api_key, token_provider=token_provider, user_agent=user_agent
        )
        self._timeout = timeout
        self._wait_poll = wait_poll
        self._inline_limit = inline_limit
        self._own = http_client is None
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(timeout), limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)
        )

    # -- plumbing -----------------------------------------------------------

    @property
    def tenant(self) -> str:
        """The tenant the client acts for ("default" when none was set)."""
        return self._core.tenant or "default"

    @property
    def servers(self) -> list[str]:
        """Server base URLs, in failover order."""
        return list(self._core.servers)

    def close(self) -> None:
        """Close the connections (when the client made its own httpx.Client)."""
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one API call and return its decoded JSON body (``None`` for an empty one).

        Non-2xx answers raise the :class:`GreyError` subclass of their code.
        """
        body = None if json is None else _dumps(json)
        resp = self._send(method, path, params, body, timeout)
        if resp.status_code < 200 or resp.status_code > 299:
            raise decode_error(resp)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as e:
            raise Internal(f"{method} {path}: decode {resp.status_code} response: {e}") from e

    def _send(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] | None,
        body: bytes | None,
        timeout: float | None,
    ) -> httpx.Response:
        last: GreyError | None = None
        core = self._core
        first = core.preferred
        for idx in core.order():
            url = core.servers[idx] + path
            try:
                resp = self._http.request(
                    method,
                    url,
                    params=list(params) if params else None,
                    content=body,
                    headers=core.headers(body is not None),
                    timeout=self._timeout if timeout is None else timeout,
                )
            except httpx.TransportError as e:
                last = unavailable(method, path, core.servers[idx], e)
                if not can_fail_over(method, e):
                    raise last from e
                continue
            if resp.status_code == 503:
                last = decode_error(resp)
                continue
            if idx != first:
                core.preferred = idx
            return resp
        assert last is not None
        raise last

    # -- tasks ----------------------------------------------------------------

    def submit(self, spec: SpecLike | None = None, /, **fields: Any) -> Task:
        """Submit one task and return it as created (``submit(Spec(kind="echo", payload=...))`` or
        ``submit(kind="echo", payload=...)``). A spec whose idempotency_key matches an existing
        task returns that task. A payload over ``inline_limit`` bytes of JSON is uploaded first and
        the task submitted with its ``payload_ref``."""
        body = self._inline(spec_json(spec) if spec is not None else dict(fields))
        return from_json(Task, self.request("POST", "/api/v1/tasks", json=body))

    def submit_batch(self, specs: Sequence[SpecLike]) -> list[Task]:
        """Submit 1 to 1000 tasks at once, all or nothing; returns them in order. A bad spec raises
        InvalidArgument whose ``field`` is ``tasks[i].<field>``."""
        body = {"tasks": [self._inline(spec_json(s)) for s in specs]}
        data = self.request("POST", "/api/v1/tasks/batch", json=body)
        return [from_json(Task, t) for t in data["tasks"]]

    def _inline(self, spec: dict[str, Any]) -> dict[str, Any]:
        big = large_payload(spec, self._inline_limit)
        if big is None:
            return spec
        out = {k: v for k, v in spec.items() if k != "payload"}
        out["payload_ref"] = self.upload_payload(big)
        return out

    def upload_payload(self, data: bytes) -> str:
        """Upload a payload's JSON bytes through a signed URL and return the ``payload_ref`` to submit with."""
        up = self.request("POST", "/api/v1/uploads", json={"size": len(data)})
        url = absolute(self._core.servers[self._core.preferred], up["url"])
        headers = dict(up.get("headers") or {})
        try:
            resp = self._http.request(up.get("method", "PUT"), url, content=data, headers=headers)
        except httpx.TransportError as e:
            raise unavailable("PUT", "signed upload URL", url, e) from e
        if resp.status_code < 200 or resp.status_code > 299:
            raise decode_error(resp)
        return str(up["payload_ref"])

    def result(self, task_id: str) -> bytes:
        """A completed task's result bytes (a stored result is downloaded, as served)."""
        return self._raw("GET", task_path(task_id, "/result"))

    def _raw(self, method: str, path: str) -> bytes:
        resp = self._send(method, path, None, None, None)
        if resp.status_code < 200 or resp.status_code > 299:
            raise decode_error(resp)
        return resp.content

    def _fill_result(self, t: Task) -> Task:
        """Fetch a result stored by reference, so callers see ``result`` as if it were inline."""
        if t.status == "completed" and t.result_ref is not None and t.result is None:
            data = self.result(t.id)
            check_stored(data, t.result_ref.sha256, t.result_ref.ref)
            t.result = _json.loads(data)
        return t

    def get(self, task_id: str) -> Task:
        """A task of the tenant; unknown (or another tenant's) raises NotFound. A result stored by
        reference (``result_ref``) is fetched into ``result`` and checked against its SHA-256."""
        return self._fill_result(from_json(Task, self.request("GET", task_path(task_id))))

    def list(
        self,
        *,
        status: Sequence[str] | str | None = None,
        kind: str | None = None,
        finished_from: datetime | None = None,
        finished_to: datetime | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the tenant's tasks, newest first; pass ``page.next_cursor`` as ``cursor`` with the
        same filters for the next page."""
        f = ListFilter(status, kind, finished_from, finished_to, labels, limit, cursor)
        return from_json(TaskPage, self.request("GET", "/api/v1/tasks", params=f.params()))

    def list_all(
        self,
        *,
        status: Sequence[str] | str | None = None,
        kind: str | None = None,
        finished_from: datetime | None = None,
        finished_to: datetime | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Task]:
        """Every task matching the filters, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = self.list(
                status=status,
                kind=kind,
                finished_from=finished_from,
                finished_to=finished_to,
                labels=labels,
                limit=limit,
                cursor=cursor,
            )
            yield from page.tasks
            if not page.next_cursor or not page.tasks:
                return
            cursor = page.next_cursor

    def cancel(self, task_id: str) -> Task:
        """Cancel a task and return it; a finished task raises FailedPrecondition."""
        return from_json(Task, self.request("DELETE", task_path(task_id)))

    def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """Block until the task is terminal and return it (check ``status`` and ``error``).

        Long-polls the wait route and rides out transient errors (unavailable,
        rate limited) with backoff. When ``timeout`` seconds pass first it raises
        WaitTimeout (a DeadlineExceeded), whose ``task`` attribute is the task as last seen.
        """
        path = task_path(task_id, "/wait")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Task | None = None
        retry, early = Backoff(), Backoff()
        while True:
            poll = self._wait_poll
            if deadline is not None:
                rem = deadline - time.monotonic()
                poll = min(poll, rem - min(rem / 5, 1.0))
            if poll <= 0.001:
                raise WaitTimeout(f"task {task_id} did not finish within {timeout}s", last)
            began = time.monotonic()
            try:
                data = self.request(
                    "GET", path, params=[("timeout", format_duration(poll))], timeout=poll + self._timeout
                )
            except GreyError as e:
                if not transient(e):
                    raise
                time.sleep(_clip(retry.delay(e), deadline))
                continue
            t = from_json(Task, data)
            last = t
            if t.terminal:
                return self._fill_result(t)
            retry.reset()
            if time.monotonic() - began < poll / 10:
                time.sleep(_clip(early.delay(None), deadline))
            else:
                early.reset()

    def replay(self, task_id: str) -> Replay:
        """Re-run a completed deterministic task and compare digests; a kind that cannot be replayed
        raises FailedPrecondition."""
        return from_json(Replay, self.request("POST", task_path(task_id, "/replay")))

    # -- proofs ----------------------------------------------------------------

    def proof(self, task_id: str) -> ProofRecord:
        """The task's signed proof with the server's own check; a task without one raises NotFound."""
        return from_json(ProofRecord, self.request("GET", task_path(task_id, "/proof")))

    def node_keys(self) -> builtins.list[NodeKey]:
        """Every proof-signing key the cluster registered, also of nodes that left."""
        return [from_json(NodeKey, k) for k in self.request("GET", "/api/v1/cluster/keys")["keys"]]

    def verify_proof(self, task_id: str, record: ProofRecord | None = None) -> _proof.Statement:
        """Verify a task's proof here, not trusting the server's check: the envelope's ed25519 signature
        against the cluster's registered keys, and the signed digests against the task's payload and
        result as served. Raises :class:`grey_client.proof.ProofError` saying what differs."""
        rec = record or self.proof(task_id)
        t, raw = self._task_raw(task_id)
        ring = _proof.key_ring(self.node_keys())
        return _proof.verify(
            rec.envelope,
            ring,
            task_id=task_id,
            tenant_id=t.tenant_id,
            input_digest=_proof.input_digest(t, has_payload="payload" in raw),
            output_digest=_proof.output_digest(t, has_result="result" in raw),
        )

    def _task_raw(self, task_id: str) -> tuple[Task, dict[str, Any]]:
        raw = self.request("GET", task_path(task_id))
        return from_json(Task, raw), raw

    # -- the lease protocol (what Worker speaks) ---------------------------------

    def lease(self, body: Mapping[str, Any], wait: float) -> LeaseResponse:
        """POST /api/v1/workers/lease (a long poll of up to ``wait`` seconds)."""
        return from_json(
            LeaseResponse, self.request("POST", "/api/v1/workers/lease", json=body, timeout=wait + self._timeout)
        )

    def heartbeat(self, body: Mapping[str, Any]) -> HeartbeatResponse:
        """POST /api/v1/workers/heartbeat."""
        return from_json(HeartbeatResponse, self.request("POST", "/api/v1/workers/heartbeat", json=body))

    def complete(self, body: Mapping[str, Any]) -> CompleteResponse:
        """POST /api/v1/workers/complete."""
        return from_json(CompleteResponse, self.request("POST", "/api/v1/workers/complete", json=body))

    def join_worker(self, node_id: str, public_key: bytes, labels: Mapping[str, str] | None = None) -> Any:
        """Register a worker-only node and its proof-signing public key (POST /api/v1/cluster/join)."""
        import base64

        body: dict[str, Any] = {
            "node_id": node_id,
            "role": "worker",
            "public_key": base64.b64encode(public_key).decode(),
        }
        if labels:
            body["labels"] = dict(labels)
        return self.request("POST", "/api/v1/cluster/join", json=body)


def _clip(d: float, deadline: float | None) -> float:
    if deadline is None:
        return d
    return max(0.0, min(d, deadline - time.monotonic()))


def _dumps(v: Any) -> bytes:
    import json

    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()
