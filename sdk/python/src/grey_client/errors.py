"""Typed exceptions for Grey's error codes.

Every non-2xx answer of the API carries an ``Error`` body
(``{"code", "message", "field", "reason"}``); the client raises the
subclass of :class:`GreyError` that matches ``code``, so callers branch with
``except NotFound``. A body that is not a Grey error keeps the HTTP
status's code, as the Go client does.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from typing import Any

__all__ = [
    "AlreadyExists",
    "Canceled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GreyError",
    "Internal",
    "InvalidArgument",
    "MethodNotAllowed",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "WaitTimeout",
    "code_for_status",
    "error_from_body",
    "parse_retry_after",
]


class GreyError(Exception):
    """An error answered by Grey (or raised by the client for the same causes).

    Attributes:
        code: Grey's error code (``not_found``, ``invalid_argument``, ...).
        message: the server's human-readable message.
        field: the offending input field (``tasks[3].priority``) or ``None``.
        reason: the machine-readable sub-reason (which quota: ``max_queued``) or ``None``.
        status: the HTTP status, or ``None`` when the client raised it itself.
        retry_after: seconds the server asked to wait (``Retry-After``), 0 when none.
    """

    code = "unknown"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        status: int | None = None,
        retry_after: float = 0.0,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.reason = reason
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        s = f"{self.code}: {self.message}"
        if self.field:
            s += f" (field {self.field})"
        if self.reason:
            s += f" [reason {self.reason}]"
        return s

    @property
    def transient(self) -> bool:
        """Whether a retry after a pause may succeed (unavailable, rate limited, timed out)."""
        return self.code in ("unavailable", "resource_exhausted", "deadline_exceeded")


class Unknown(GreyError):
    """An error of unknown cause (500)."""

    code = "unknown"


class NotFound(GreyError):
    """The object does not exist, or belongs to another tenant (404)."""

    code = "not_found"


class AlreadyExists(GreyError):
    """The object exists already, or an idempotency key was reused with another spec (409)."""

    code = "already_exists"


class InvalidArgument(GreyError):
    """The request is malformed; ``field`` names where (400)."""

    code = "invalid_argument"


class FailedPrecondition(GreyError):
    """The object is not in a state that allows the call, e.g. cancelling a finished task (409)."""

    code = "failed_precondition"


class PermissionDenied(GreyError):
    """The principal may not do this; ``reason`` says why (403)."""

    code = "permission_denied"


class Unauthenticated(GreyError):
    """No credential, or one the server refused (401)."""

    code = "unauthenticated"


class ResourceExhausted(GreyError):
    """A quota or rate limit was hit; ``reason`` names it, ``retry_after`` says when to retry (429)."""

    code = "resource_exhausted"


class TooLarge(GreyError):
    """The request or an object in it is over a size limit (413)."""

    code = "too_large"


class Unimplemented(GreyError):
    """The server does not implement this (501)."""

    code = "unimplemented"


class MethodNotAllowed(GreyError):
    """The path does not have this method (405)."""

    code = "method_not_allowed"


class Unavailable(GreyError):
    """No server could answer (503, or no connection); retry later."""

    code = "unavailable"


class Canceled(GreyError):
    """The request was cancelled (499)."""

    code = "canceled"


class DeadlineExceeded(GreyError):
    """The request timed out (504)."""

    code = "deadline_exceeded"


class WaitTimeout(DeadlineExceeded):
    """A wait whose timeout passed before the task finished; ``task`` is the task as last seen (or None)."""

    def __init__(self, message: str, task: Any = None) -> None:
        super().__init__(message)
        self.task = task


class Internal(GreyError):
    """A server bug (500)."""

    code = "internal"


_BY_CODE: dict[str, type[GreyError]] = {
    c.code: c
    for c in (
        Unknown,
        NotFound,
        AlreadyExists,
        InvalidArgument,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        TooLarge,
        Unimplemented,
        MethodNotAllowed,
        Unavailable,
        Canceled,
        DeadlineExceeded,
        Internal,
    )
}

_BY_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "failed_precondition",
    413: "too_large",
    429: "resource_exhausted",
    499: "canceled",
    500: "internal",
    501: "unimplemented",
    503: "unavailable",
    504: "deadline_exceeded",
}


def code_for_status(status: int) -> str:
    """Grey's code for an HTTP status (greyerr.FromHTTPStatus)."""
    return _BY_STATUS.get(status, "unknown")


def error_class(code: str) -> type[GreyError]:
    """The exception class of a code (:class:`Unknown` for codes this SDK does not know)."""
    return _BY_CODE.get(code, Unknown)


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date); 0 when absent or malformed."""
    if not value:
        return 0.0
    v = value.strip()
    if v.isdigit():
        return float(min(int(v), 1 << 32))
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return 0.0
    d = dt.timestamp() - (time.time() if now is None else now)
    return d if d > 0 else 0.0


def error_from_body(status: int, body: bytes, retry_after: str | None = None) -> GreyError:
    """The exception for an error response: its ``Error`` body, or the status's code and the body's start."""
    import json

    ra = parse_retry_after(retry_after)
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(body)
    if isinstance(data, dict) and isinstance(data.get("code"), str) and data["code"]:
        code = data["code"]
        msg = data.get("message")
        field = data.get("field")
        reason = data.get("reason")
        return error_class(code)(
            msg if isinstance(msg, str) else "",
            field=field if isinstance(field, str) and field else None,
            reason=reason if isinstance(reason, str) and reason else None,
            status=status,
            retry_after=ra,
            code=code,
        )
    code = code_for_status(status)
    text = body.decode("utf-8", "replace").strip()
    if len(text) > 200:
        text = text[:200] + "…"
    return error_class(code)(f"HTTP {status}: {text or 'no body'}", status=status, retry_after=ra, code=code)
