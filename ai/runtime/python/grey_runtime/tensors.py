"""Open Inference Protocol tensors <-> numpy arrays."""

import numpy as np

from .errors import InvalidArgument, FailedPrecondition

# OIP datatype -> little-endian numpy dtype.
DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

_BY_KIND = {(d.kind, d.itemsize): name for name, d in DTYPES.items()}


def datatype_of(arr):
    """The OIP datatype of a numpy array, or FailedPrecondition for one
    Grey does not carry (float16, bfloat16, complex, strings)."""
    name = _BY_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if name is None:
        raise FailedPrecondition(
            "the model answered dtype %s, which Grey does not carry "
            "(BOOL, UINT8..64, INT8..64, FP32, FP64)" % arr.dtype)
    return name


def decode(specs, body):
    """The body's tensors as (name, numpy array) pairs, per the header's
    ``tensors`` entries. Arrays are views of body (no copy)."""
    if not isinstance(specs, list):
        raise InvalidArgument("tensors must be a list")
    out = []
    off = 0
    for i, s in enumerate(specs):
        if not isinstance(s, dict):
            raise InvalidArgument("tensors[%d] is not an object" % i)
        name, dt, shape = s.get("name"), s.get("datatype"), s.get("shape")
        dtype = DTYPES.get(dt)
        if dtype is None:
            raise InvalidArgument("tensors[%d]: datatype %r is not supported" % (i, dt))
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise InvalidArgument("tensors[%d]: shape %r is not a list of non-negative integers" % (i, shape))
        n = 1
        for d in shape:
            n *= d
        size = n * dtype.itemsize
        if off + size > len(body):
            raise InvalidArgument("tensors[%d] %r needs %d bytes, the body has %d left" % (i, name, size, len(body) - off))
        arr = np.frombuffer(body, dtype=dtype, count=n, offset=off).reshape(shape)
        off += size
        out.append((name, arr))
    if off != len(body):
        raise InvalidArgument("body has %d bytes past its tensors" % (len(body) - off))
    return out


def encode(named):
    """(header entries, body chunks) for (name, numpy array) pairs; every
    array is made little-endian and C-contiguous, keeping its dtype."""
    specs, chunks = [], []
    for name, arr in named:
        dt = datatype_of(arr)
        arr = np.ascontiguousarray(arr, dtype=DTYPES[dt])
        specs.append({"name": name, "datatype": dt, "shape": list(arr.shape)})
        chunks.append(memoryview(arr).cast("B") if arr.size else b"")
    return specs, chunks
