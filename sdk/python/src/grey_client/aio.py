"""The asyncio client: the same calls as :class:`grey_client.Client`, awaited."""

from __future__ import annotations

import asyncio
import builtins
import json as _json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from .client import _clip, _dumps
from .errors import GreyError, Internal, WaitTimeout
from .models import NodeKey, ProofRecord, Replay, Task, TaskPage, format_duration, from_json

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio client of a Grey cluster; see :class:`grey_client.Client` for servers and credentials.

    Use it as ``async with AsyncClient(...) as c:`` or call :meth:`aclose`.
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
        http_client: httpx.AsyncClient | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        self._core = Core(
            servers, tenant=tenant, token=token, api_key=api_key, token_provider=token_provider, user_agent=user_agent
        )
        self._timeout = timeout
        self._wait_poll = wait_poll
        self._inline_limit = inline_limit
        self._own = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)
        )

    @property
    def tenant(self) -> str:
        """The tenant the client acts for ("default" when none was set)."""
        return self._core.tenant or "default"

    async def aclose(self) -> None:
        """Close the connections (when the client made its own httpx.AsyncClient)."""
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one API call and return its decoded JSON body; non-2xx raises the code's GreyError."""
        body = None if json is None else _dumps(json)
        last: GreyError | None = None
        core = self._core
        first = core.preferred
        for idx in core.order():
            try:
                resp = await self._http.request(
                    method,
                    core.servers[idx] + path,
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
            if resp.status_code < 200 or resp.status_code > 299:
                raise decode_error(resp)
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError as e:
                raise Internal(f"{method} {path}: decode {resp.status_code} response: {e}") from e
        assert last is not None
        raise last

    async def submit(self, spec: SpecLike | None = None, /, **fields: Any) -> Task:
        """Submit one task and return it as created (a payload over ``inline_limit`` goes by upload)."""
        body = await self._inline(spec_json(spec) if spec is not None else dict(fields))
        return from_json(Task, await self.request("POST", "/api/v1/tasks", json=body))

    async def submit_batch(self, specs: Sequence[SpecLike]) -> list[Task]:
        """Submit 1 to 1000 tasks at once, all or nothing; returns them in order."""
        body = {"tasks": [await self._inline(spec_json(s)) for s in specs]}
        data = await self.request("POST", "/api/v1/tasks/batch", json=body)
        return [from_json(Task, t) for t in data["tasks"]]

    async def _inline(self, spec: dict[str, Any]) -> dict[str, Any]:
        big = large_payload(spec, self._inline_limit)
        if big is None:
            return spec
        out = {k: v for k, v in spec.items() if k != "payload"}
        out["payload_ref"] = await self.upload_payload(big)
        return out

    async def upload_payload(self, data: bytes) -> str:
        """Upload a payload's JSON bytes through a signed URL and return its ``payload_ref``."""
        up = await self.request("POST", "/api/v1/uploads", json={"size": len(data)})
        url = absolute(self._core.servers[self._core.preferred], up["url"])
        try:
            resp = await self._http.request(
                up.get("method", "PUT"), url, content=data, headers=dict(up.get("headers") or {})
            )
        except httpx.TransportError as e:
            raise unavailable("PUT", "signed upload URL", url, e) from e
        if resp.status_code < 200 or resp.status_code > 299:
            raise decode_error(resp)
        return str(up["payload_ref"])

    async def result(self, task_id: str) -> bytes:
        """A completed task's result bytes (a stored result is downloaded, as served)."""
        core = self._core
        resp = await self._http.get(
            core.servers[core.preferred] + task_path(task_id, "/result"), headers=core.headers(False)
        )
        if resp.status_code < 200 or resp.status_code > 299:
            raise decode_error(resp)
        return resp.content

    async def _fill_result(self, t: Task) -> Task:
        if t.status == "completed" and t.result_ref is not None and t.result is None:
            data = await self.result(t.id)
            check_stored(data, t.result_ref.sha256, t.result_ref.ref)
            t.result = _json.loads(data)
        return t

    async def get(self, task_id: str) -> Task:
        """A task of the tenant; unknown (or another tenant's) raises NotFound; a stored result is fetched."""
        return await self._fill_result(from_json(Task, await self.request("GET", task_path(task_id))))

    async def list(
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
        """One page of the tenant's tasks, newest first."""
        f = ListFilter(status, kind, finished_from, finished_to, labels, limit, cursor)
        return from_json(TaskPage, await self.request("GET", "/api/v1/tasks", params=f.params()))

    async def list_all(
        self,
        *,
        status: Sequence[str] | str | None = None,
        kind: str | None = None,
        finished_from: datetime | None = None,
        finished_to: datetime | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Task]:
        """Every task matching the filters, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = await self.list(
                status=status,
                kind=kind,
                finished_from=finished_from,
                finished_to=finished_to,
                labels=labels,
                limit=limit,
                cursor=cursor,
            )
            for t in page.tasks:
                yield t
            if not page.next_cursor or not page.tasks:
                return
            cursor = page.next_cursor

    async def cancel(self, task_id: str) -> Task:
        """Cancel a task and return it; a finished task raises FailedPrecondition."""
        return from_json(Task, await self.request("DELETE", task_path(task_id)))

    async def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """Wait until the task is terminal (see :meth:`grey_client.Client.wait`)."""
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
                data = await self.request(
                    "GET", path, params=[("timeout", format_duration(poll))], timeout=poll + self._timeout
                )
            except GreyError as e:
                if not transient(e):
                    raise
                await asyncio.sleep(_clip(retry.delay(e), deadline))
                continue
            t = from_json(Task, data)
            last = t
            if t.terminal:
                return await self._fill_result(t)
            retry.reset()
            if time.monotonic() - began < poll / 10:
                await asyncio.sleep(_clip(early.delay(None), deadline))
            else:
                early.reset()

    async def replay(self, task_id: str) -> Replay:
        """Re-run a completed deterministic task and compare digests."""
        return from_json(Replay, await self.request("POST", task_path(task_id, "/replay")))

    async def proof(self, task_id: str) -> ProofRecord:
        """The task's signed proof with the server's own check; none raises NotFound."""
        return from_json(ProofRecord, await self.request("GET", task_path(task_id, "/proof")))

    async def node_keys(self) -> builtins.list[NodeKey]:
        """Every proof-signing key the cluster registered."""
        return [from_json(NodeKey, k) for k in (await self.request("GET", "/api/v1/cluster/keys"))["keys"]]

    async def verify_proof(self, task_id: str, record: ProofRecord | None = None) -> _proof.Statement:
        """Verify a task's proof here (see :meth:`grey_client.Client.verify_proof`)."""
        rec = record or await self.proof(task_id)
        raw = await self.request("GET", task_path(task_id))
        t = from_json(Task, raw)
        ring = _proof.key_ring(await self.node_keys())
        return _proof.verify(
            rec.envelope,
            ring,
            task_id=task_id,
            tenant_id=t.tenant_id,
            input_digest=_proof.input_digest(t, has_payload="payload" in raw),
            output_digest=_proof.output_digest(t, has_result="result" in raw),
        )
