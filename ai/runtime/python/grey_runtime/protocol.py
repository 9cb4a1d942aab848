"""The frame protocol between Grey's Go worker and this runtime.

One frame, in either direction::

    uint32 big-endian  N      length of what follows (the payload)
    uint32 big-endian  H      length of the header
    H bytes                   header: a JSON object (UTF-8)
    N - 4 - H bytes           body: raw tensor bytes

Tensors travel in the body, concatenated in the order of the header's
``tensors`` list; each entry ``{"name", "datatype", "shape"}`` says how many
bytes it takes (elements x datatype size). Tensor bytes are little-endian
and row-major, as in Grey's ``ai.Tensor``.

Requests (Go -> Python) carry ``id`` (a positive integer, unique while in
flight) and ``op``: ``info``, ``load``, ``unload``, ``infer``,
``shutdown``, and ``cancel`` (no reply: drop the queued request ``id`` if
it has not started). Replies carry the request's ``id`` and ``ok``; when
``ok`` is false, ``error`` is ``{"code", "message"}`` with code one of
``invalid_argument``, ``failed_precondition``, ``model_error``,
``not_found``, ``canceled``, ``internal``. The runtime sends one
unsolicited frame, ``{"id": 0, "op": "ready", ...}``, once it is ready.
"""

import json
import struct

MAX_FRAME = 1 << 30
"""Largest payload accepted (1 GiB)."""

MAX_HEADER = 4 << 20
"""Largest header accepted (4 MiB)."""

_U32 = struct.Struct(">I")


class ProtocolError(Exception):
    """A malformed frame: the stream cannot be trusted past it."""


def _read_exact(f, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            if got == 0:
                return None
            raise ProtocolError("stream ended inside a frame")
        got += k
    return buf


def read_frame(f):
    """Read one frame from the binary file f: (header dict, body bytearray),
    or None at a clean end of stream."""
    head = _read_exact(f, 4)
    if head is None:
        return None
    (n,) = _U32.unpack(head)
    if n < 4 or n > MAX_FRAME:
        raise ProtocolError("frame length %d out of range" % n)
    payload = _read_exact(f, n)
    if payload is None:
        raise ProtocolError("stream ended inside a frame")
    (h,) = _U32.unpack_from(payload, 0)
    if h > n - 4 or h > MAX_HEADER:
        raise ProtocolError("header length %d out of range" % h)
    try:
        header = json.loads(bytes(payload[4:4 + h]).decode("utf-8"))
    except ValueError as e:
        raise ProtocolError("header is not JSON: %s" % e) from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    # A bytearray slice is a copy; keep the body writable so numpy arrays
    # over it are writable (torch.from_numpy warns on read-only arrays).
    return header, payload[4 + h:]


def write_frame(f, header, chunks=()):
    """Write one frame to the binary file f: header (a dict) and the body
    as a sequence of bytes-like chunks. Flushes."""
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    size = 4 + len(hb) + sum(len(c) for c in chunks)
    f.write(_U32.pack(size))
    f.write(_U32.pack(len(hb)))
    f.write(hb)
    for c in chunks:
        f.write(c)
    f.flush()
