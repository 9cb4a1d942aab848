"""Typed models of the API's JSON bodies.

They are plain dataclasses (no runtime dependency, checked by mypy --strict),
one per schema of ``api/openapi.yaml`` that the SDK reads or sends, with the
schema's property names as field names. ``tests/test_spec.py`` walks the
spec and fails when a model lacks a property of its schema or has one the
schema lacks, so the models cannot drift from the server silently.

Decoding ignores properties a model does not know (a newer server may add
some); times become timezone-aware :class:`datetime.datetime`; durations
stay Go duration strings (``"1.5s"``; :func:`parse_duration` reads them).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, Union

__all__ = [
    "TERMINAL",
    "Assignment",
    "Attempt",
    "CompleteResponse",
    "Constraints",
    "DataRef",
    "Envelope",
    "HeartbeatResponse",
    "Lease",
    "LeaseResponse",
    "LostLease",
    "NodeKey",
    "ProofRecord",
    "ProofShort",
    "Replay",
    "ReportResult",
    "RetryPolicy",
    "Signature",
    "Spec",
    "Task",
    "TaskError",
    "TaskPage",
    "TaskUsage",
    "format_duration",
    "format_time",
    "from_json",
    "parse_duration",
    "parse_time",
    "to_json",
]

T = TypeVar("T")

#: Statuses after which a task never changes again.
TERMINAL = frozenset({"completed", "failed", "cancelled"})

# A JSON name that differs from the field name is kept in the field's metadata.
_JSON = "json"


def _jf(name: str, default: Any = None) -> Any:
    return field(default=default, metadata={_JSON: name})


@dataclass
class TaskError:
    """Why an attempt or a task failed (schema ``TaskError``)."""

    message: str = ""
    retryable: bool = False
    code: str | None = None


@dataclass
class Attempt:
    """One execution attempt (schema ``Attempt``)."""

    n: int = 0
    worker_id: str = ""
    leased_at: datetime | None = None
    principal: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: TaskError | None = None


@dataclass
class Lease:
    """The current lease of an active task (schema ``Lease``)."""

    worker_id: str = ""
    attempt: int = 0
    deadline: datetime | None = None
    principal: str | None = None


@dataclass
class DataRef:
    """An object of the tenant's task data (schema ``DataRef``)."""

    ref: str = ""
    size: int = 0
    sha256: str = ""


@dataclass
class TaskUsage:
    """What one task used (schema ``TaskUsage``)."""

    exec_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class Constraints:
    """Where a task may run (schema ``Constraints``)."""

    labels: dict[str, str] | None = None
    cpu: float | None = None
    gpu: float | None = None
    memory_mb: int | None = None


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter (schema ``RetryPolicy``); durations as Go strings ("1s")."""

    max_retries: int | None = None
    base_delay: str | None = None
    max_delay: str | None = None


@dataclass
class Spec:
    """What a client submits (schema ``Spec``). Unset (``None``) fields are left out of the request."""

    kind: str
    type: str | None = None
    payload: Any = None
    payload_ref: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    state_key: str | None = None
    depends_on: list[str] | None = None
    constraints: Constraints | None = None
    timeout: str | None = None
    retry: RetryPolicy | None = None
    require_proof: bool | None = None
    require_tee: str | None = None
    run_at: datetime | None = None
    headers: dict[str, str] | None = None


@dataclass
class Task:
    """A task and everything Grey knows about it (schema ``Task``: the Spec fields plus its state)."""

    id: str = ""
    tenant_id: str = ""
    kind: str = ""
    type: str = ""
    status: str = ""
    attempt: int = 0
    index: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    payload: Any = None
    payload_ref: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    state_key: str | None = None
    depends_on: list[str] | None = None
    constraints: Constraints | None = None
    timeout: str | None = None
    retry: RetryPolicy | None = None
    require_proof: bool | None = None
    require_tee: str | None = None
    run_at: datetime | None = None
    headers: dict[str, str] | None = None
    lease: Lease | None = None
    result: Any = None
    payload_object: DataRef | None = None
    result_ref: DataRef | None = None
    error: TaskError | None = None
    attempts: list[Attempt] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    waiting_reason: str | None = None
    proof_id: str | None = None
    usage: TaskUsage | None = None
    cost_tags: dict[str, str] | None = None
    cost_usd: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the task is completed, failed or cancelled."""
        return self.status in TERMINAL


@dataclass
class TaskPage:
    """One page of a task list, newest first (schema ``TaskList``); ``next_cursor`` is "" on the last page."""

    tasks: list[Task] = field(default_factory=list)
    next_cursor: str = ""


@dataclass
class Signature:
    """One DSSE signature (the items of ``Envelope.signatures``)."""

    sig: str = ""
    keyid: str | None = None


@dataclass
class Envelope:
    """A DSSE envelope whose payload is an in-toto Statement v1 (schema ``Envelope``)."""

    payload_type: str = _jf("payloadType", "")
    payload: str = ""
    signatures: list[Signature] = field(default_factory=list)


@dataclass
class ProofShort:
    """The seed's short form of a proof (schema ``ProofShort``)."""

    task_id: str = ""
    platform: str = ""
    measurement: str = ""
    signature: str = ""
    timestamp: int = 0


@dataclass
class ProofRecord:
    """A task's proof as the server serves it, with the server's own check (schema ``ProofRecord``)."""

    task_id: str = ""
    proof_id: str = ""
    envelope: Envelope = field(default_factory=Envelope)
    short: ProofShort = field(default_factory=ProofShort)
    verified: bool = False
    node_id: str | None = None
    problem: str | None = None


@dataclass
class Replay:
    """The outcome of a replay (schema ``Replay``)."""

    task_id: str = ""
    kind: str = ""
    stored_digest: str = ""
    match: bool = False
    node: str = ""
    duration_ms: float = 0.0
    proof_digest: str | None = None
    replay_digest: str | None = None
    error: str | None = None


@dataclass
class NodeKey:
    """A registered proof-signing key (the items of ``NodeKeyList.keys``); ``public_key`` is base64."""

    key_id: str = ""
    node_id: str = ""
    public_key: str = ""
    added_at: datetime | None = None


@dataclass
class Assignment:
    """A leased task as handed to a worker (schema ``Assignment``)."""

    task_id: str = ""
    tenant_id: str = ""
    kind: str = ""
    attempt: int = 0
    timeout: str = "0s"
    lease_deadline: datetime | None = None
    payload: Any = None
    headers: dict[str, str] | None = None
    prove: bool = False
    principal: str | None = None
    payload_object: DataRef | None = None
    #: Instead of ``payload``: the base64 of a payload object in the Open
    #: Inference Protocol binary form (only ``inference`` tasks have one).
    payload_binary: str | None = None
    #: The payload object is not in the lease: fetch it with GET
    #: /api/v1/workers/tasks/{id}/payload and check it against
    #: ``payload_object`` (set for every payload object of ``inference``).
    payload_fetch: bool = False
    result_inline_max: int = 0


@dataclass
class LeaseResponse:
    """Granted tasks (schema ``LeaseResponse``)."""

    tasks: list[Assignment] = field(default_factory=list)
    lease_ttl: str = ""


@dataclass
class LostLease:
    """A lease the worker must give up (schema ``LostLease``)."""

    task_id: str = ""
    attempt: int = 0
    reason: str = ""


@dataclass
class HeartbeatResponse:
    """Leases the worker no longer holds (schema ``HeartbeatResponse``)."""

    lost: list[LostLease] = field(default_factory=list)


@dataclass
class ReportResult:
    """Whether one report was recorded (schema ``ReportResult``)."""

    task_id: str = ""
    accepted: bool = False
    reason: str | None = None


@dataclass
class CompleteResponse:
    """One result per report, in request order (schema ``CompleteResponse``)."""

    results: list[ReportResult] = field(default_factory=list)


# --- times and durations -------------------------------------------------

_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(s: str) -> datetime:
    """Parse an RFC 3339 time as Go writes it (up to nanoseconds; Python keeps microseconds)."""
    m = _TIME.match(s)
    if m is None:
        raise ValueError(f"{s!r} is not an RFC 3339 time")
    date, clock, frac, zone = m.groups()
    frac = ((frac or "") + "000000")[:6]
    z = "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(f"{date}T{clock}.{frac}{z}")


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (naive times are taken as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR = re.compile(r"([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(s: str) -> float:
    """Seconds of a Go duration string such as ``"1.5s"``, ``"1m30s"`` or ``"0s"``."""
    v = s.strip()
    if v in ("0", ""):
        return 0.0
    sign = 1.0
    if v[0] in "+-":
        sign = -1.0 if v[0] == "-" else 1.0
        v = v[1:]
    pos, total = 0, 0.0
    while pos < len(v):
        m = _DUR.match(v, pos)
        if m is None:
            raise ValueError(f"{s!r} is not a Go duration")
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_duration(d: float | timedelta | str) -> str:
    """A Go duration string for seconds (or a timedelta); strings pass through."""
    if isinstance(d, str):
        return d
    secs = d.total_seconds() if isinstance(d, timedelta) else float(d)
    ms = round(secs * 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


# --- JSON codec -------------------------------------------------------------


def json_name(f: dataclasses.Field[Any]) -> str:
    """The JSON property name of a model field."""
    return str(f.metadata.get(_JSON, f.name))


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _hints_cache.get(cls)
    if h is None:
        h = typing.get_type_hints(cls)
        _hints_cache[cls] = h
    return h


def _decode(tp: Any, v: Any) -> Any:
    if v is None or tp is Any:
        return v
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], v) if len(args) == 1 else v
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_decode(item, x) for x in v]
    if origin is dict:
        _, val = typing.get_args(tp)
        return {k: _decode(val, x) for k, x in v.items()}
    if tp is datetime:
        return parse_time(v)
    if tp is float and isinstance(v, int):
        return float(v)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_json(tp, v)
    return v


def from_json(cls: type[T], data: Any) -> T:
    """Decode a JSON object (already parsed) into the model ``cls``; unknown properties are ignored."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: want a JSON object, got {type(data).__name__}")
    hints = _hints(cls)
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = json_name(f)
        if name in data:
            kw[f.name] = _decode(hints[f.name], data[name])
    return cls(**kw)


def _encode(v: Any) -> Any:
    if isinstance(v, datetime):
        return format_time(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_json(v)
    if isinstance(v, list | tuple):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    return v


def to_json(obj: Any) -> dict[str, Any]:
    """A model as a JSON object, leaving out fields that are ``None``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        out[json_name(f)] = _encode(v)
    return out
