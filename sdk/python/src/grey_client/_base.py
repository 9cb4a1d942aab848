"""What the sync and asyncio clients share: servers, credentials, request building, list filters."""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .errors import GreyError, InvalidArgument, Unauthenticated, error_from_body
from .models import Spec, format_time, to_json

DEFAULT_USER_AGENT = "grey-python-client/0.1"
#: Payloads over this many bytes of JSON are uploaded and submitted by payload_ref
#: (the server's default tasks.max_payload_bytes), as the Go client does.
DEFAULT_INLINE_LIMIT = 1 << 20
TENANT_HEADER = "X-Grey-Tenant"

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
_APIKEY = re.compile(r"^grey_[a-z2-7]{16}_[a-z2-7]{52}$")


def check_api_key(key: str) -> None:
    """Refuse a malformed API key (``grey_<id>_<secret>``) without quoting it."""
    if not key.startswith("grey_"):
        raise InvalidArgument("malformed api key: it does not start with grey_", field="api_key")
    if not _APIKEY.match(key):
        raise InvalidArgument("malformed api key: want grey_<id>_<secret> in lower-case base32", field="api_key")


class FileToken:
    """A bearer token read from a file and read again whenever the file changes (a rotated token)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._tok = ""

    def __call__(self) -> str:
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError as e:
                raise Unauthenticated(f"token file: {e}") from e
            stamp = (st.st_mtime_ns, st.st_size)
            if not self._tok or stamp != self._stamp:
                with open(self.path, encoding="utf-8") as f:
                    tok = f.read().strip()
                if not tok or "\n" in tok or "\r" in tok:
                    raise Unauthenticated(f"token file {self.path} must hold one non-empty line")
                self._tok, self._stamp = tok, stamp
            return self._tok


@dataclass
class ListFilter:
    """Filters and paging of a task list (the query of ``GET /api/v1/tasks``)."""

    status: Sequence[str] | str | None = None
    kind: str | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None
    labels: Mapping[str, str] | None = None
    limit: int | None = None
    cursor: str | None = None

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, in the Go client's order."""
        q: list[tuple[str, str]] = []
        if self.status:
            q.append(("status", self.status if isinstance(self.status, str) else ",".join(self.status)))
        if self.kind:
            q.append(("kind", self.kind))
        if self.finished_from is not None:
            q.append(("finished_from", format_time(self.finished_from)))
        if self.finished_to is not None:
            q.append(("finished_to", format_time(self.finished_to)))
        for k in sorted(self.labels or {}):
            q.append(("label", f"{k}={(self.labels or {})[k]}"))
        if self.limit:
            q.append(("limit", str(self.limit)))
        if self.cursor:
            q.append(("cursor", self.cursor))
        return q


SpecLike = Spec | Mapping[str, Any]


def spec_json(spec: SpecLike) -> dict[str, Any]:
    """A spec as its JSON object (a mapping is sent as given)."""
    return to_json(spec) if isinstance(spec, Spec) else dict(spec)


def dumps(v: Any) -> bytes:
    """Compact JSON, UTF-8 (the bytes the worker reports and the server stores)."""
    import json

    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()


def large_payload(spec: dict[str, Any], limit: int) -> bytes | None:
    """The payload's JSON bytes when the spec's inline payload is over limit (0: never), else None."""
    if limit <= 0 or "payload" not in spec or spec.get("payload_ref"):
        return None
    b = dumps(spec["payload"])
    return b if len(b) > limit else None


def absolute(server: str, u: str) -> str:
    """A Grey-served signed path resolved against the server (an absolute URL is kept)."""
    return server + u if u.startswith("/") else u


def check_stored(data: bytes, want_sha256: str, ref: str) -> None:
    """Refuse a downloaded result whose SHA-256 is not the one the task recorded."""
    import hashlib

    from .errors import FailedPrecondition

    got = hashlib.sha256(data).hexdigest()
    if got != want_sha256:
        raise FailedPrecondition(f"stored result {ref} has sha256 {got}, the task recorded {want_sha256}")


def task_path(task_id: str, suffix: str = "") -> str:
    """The escaped path of a task (an empty id is refused before any request)."""
    if not task_id:
        raise InvalidArgument("a task id is required", field="id")
    return "/api/v1/tasks/" + quote(task_id, safe="") + suffix


class Core:
    """Servers, tenant, credential and failover order of a client."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        tenant: str | None = None,
        token: str | None = None,
        api_key: str | None = None,
        token_provider: Callable[[], str] | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        items = servers.split(",") if isinstance(servers, str) else list(servers)
        self.servers: list[str] = []
        for s in items:
            s = s.strip()
            if not s:
                continue
            if "://" not in s:
                s = "http://" + s
            u = urlsplit(s)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise InvalidArgument(f"{s!r} must be an http:// or https:// URL with a host", field="servers")
            self.servers.append(f"{u.scheme}://{u.netloc}{u.path.rstrip('/')}")
        if not self.servers:
            raise InvalidArgument("no server URL given", field="servers")
        if sum(x is not None for x in (token, api_key, token_provider)) > 1:
            raise InvalidArgument("give one of token, api_key and token_provider", field="token")
        if api_key is not None:
            check_api_key(api_key)
            token = api_key
        if token is not None and ("\n" in token or "\r" in token):
            raise InvalidArgument("a token must be one line", field="token")
        if tenant is not None and not _TENANT.match(tenant):
            raise InvalidArgument(
                f"{tenant!r} is not a valid tenant (lower-case letters, digits, '-' and '_'; at most 63)",
                field="tenant",
            )
        self.tenant = tenant
        self._token = token
        self._provider = token_provider
        self.user_agent = user_agent
        self.preferred = 0

    def headers(self, body: bool) -> dict[str, str]:
        """The headers of one request: Accept, User-Agent, tenant, credential."""
        h = {"Accept": "application/json", "User-Agent": self.user_agent}
        if body:
            h["Content-Type"] = "application/json"
        if self.tenant:
            h[TENANT_HEADER] = self.tenant
        tok = self._token
        if self._provider is not None:
            tok = self._provider()
            if not tok:
                raise Unauthenticated("the token provider returned an empty token")
        if tok:
            h["Authorization"] = "Bearer " + tok
        return h

    def order(self) -> list[int]:
        """Server indexes in failover order: the one that answered last first."""
        n = len(self.servers)
        return [(self.preferred + i) % n for i in range(n)]


def can_fail_over(method: str, err: Exception) -> bool:
    """Whether a request that failed with a transport error may go to another server.

    Always for GET, HEAD and DELETE; for others only when no connection was
    made, so the server saw nothing.
    """
    if method in ("GET", "HEAD", "DELETE"):
        return True
    return isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)


def unavailable(method: str, path: str, server: str, err: Exception) -> GreyError:
    """The error of a server that did not answer."""
    from .errors import Unavailable

    e = Unavailable(f"{method} {path}: {urlsplit(server).netloc} did not answer: {err}")
    e.__cause__ = err
    return e


def decode_error(resp: httpx.Response) -> GreyError:
    """The exception of an error response."""
    return error_from_body(resp.status_code, resp.content, resp.headers.get("Retry-After"))


class Backoff:
    """Pauses between retries of transient errors.

    The server's Retry-After when it sent one (at most 30 s), else 100 ms doubling to 5 s.
    """

    def __init__(self) -> None:
        self.next = 0.0

    def delay(self, err: Exception | None) -> float:
        """The pause before the next retry after ``err``."""
        if isinstance(err, GreyError) and err.retry_after > 0:
            return min(err.retry_after, 30.0)
        if self.next == 0:
            self.next = 0.1
        d = self.next
        self.next = min(2 * self.next, 5.0)
        return d

    def reset(self) -> None:
        """Start again from the shortest pause."""
        self.next = 0.0


def jittered(n: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Half-jittered exponential delay of the n-th consecutive failure (the Go pool's backoffDelay)."""
    d = min(cap, base * float(2 ** max(0, n - 1)))
    return d / 2 + random.uniform(0, d / 2)


def transient(err: Exception) -> bool:
    """Whether ``err`` is worth retrying after a pause."""
    return isinstance(err, GreyError) and err.transient
