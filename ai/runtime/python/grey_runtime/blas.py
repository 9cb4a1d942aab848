"""Which BLAS library the process multiplies with, and its thread count.

Debian's python3-torch links ``libblas.so.3``: the reference BLAS (a plain
loop, under which a batch of rows costs what the rows cost alone) unless an
optimised library such as ``libopenblas0-pthread`` is the alternative that
name points to. torch's own ``BLAS_INFO`` does not tell (it says
``generic`` for any library behind that name), so :func:`describe` looks at
the libraries mapped into the process, and asks OpenBLAS itself.

OpenBLAS keeps its own thread pool, separate from torch's intra-op threads
(``torch.set_num_threads`` does not reach it when torch was built against a
generic BLAS): :func:`set_threads` sets both to the runtime's thread count,
so that a runtime configured for N threads uses N, not N per library.
"""

import ctypes
import os
import re

_LIB = re.compile(r"(blas|lapack|mkl_rt|mkl_core)", re.IGNORECASE)


def loaded_libraries():
    """Paths of the BLAS-like shared libraries mapped into this process
    (empty where /proc is not there)."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[5].startswith("/"):
                    p = parts[5]
                    if _LIB.search(os.path.basename(p)) and p not in paths:
                        paths.append(p)
    except OSError:
        pass
    return paths


# OpenBLAS's own calls under the names builds export them: plain (Debian's
# libopenblas0), and numpy's wheels' 64-bit-index scipy_openblas.
_NAMES = [("openblas_get_config", "openblas_get_num_threads", "openblas_set_num_threads"),
          ("scipy_openblas_get_config64_", "scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_")]


class _OpenBLAS:
    def __init__(self, lib, names):
        self.get_config = getattr(lib, names[0])
        self.get_config.restype = ctypes.c_char_p
        self.get_num_threads = getattr(lib, names[1], None)
        if self.get_num_threads is not None:
            self.get_num_threads.restype = ctypes.c_int
        self.set_num_threads = getattr(lib, names[2], None)


def _openblas(paths):
    """The first loaded library that answers OpenBLAS's own calls (an
    openblas file first, then a blas one, then lapack) and its calls, or
    None."""
    def rank(p):
        b = os.path.basename(p)
        return 0 if "openblas" in b else 1 if "blas" in b else 2

    for p in sorted(paths, key=rank):
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for names in _NAMES:
            try:
                return p, _OpenBLAS(lib, names)
            except AttributeError:
                continue
    return None


def set_threads(n):
    """Set OpenBLAS's thread count to n where OpenBLAS is loaded (the
    environment variable OPENBLAS_NUM_THREADS, set before torch is imported,
    covers its start; this covers a caller that set it otherwise)."""
    found = _openblas(loaded_libraries())
    if found is None:
        return False
    _, ob = found
    if ob.set_num_threads is None:
        return False
    ob.set_num_threads(ctypes.c_int(int(n)))
    return True


def describe(torch=None):
    """A dict naming the BLAS in use: ``library`` (the loaded file, links
    resolved), ``name`` ("openblas", "mkl", "reference" or "unknown"),
    ``config`` and ``threads`` where OpenBLAS answers, and ``torch_blas_info``
    (torch's build-time BLAS_INFO) when torch is given."""
    paths = loaded_libraries()
    out = {"name": "unknown", "library": ""}
    found = _openblas(paths)
    if found is not None:
        p, ob = found
        out["name"] = "openblas"
        out["library"] = os.path.realpath(p)
        out["config"] = (ob.get_config() or b"").decode("utf-8", "replace").strip()
        if ob.get_num_threads is not None:
            out["threads"] = int(ob.get_num_threads())
    elif any("mkl" in os.path.basename(p) for p in paths):
        out["name"] = "mkl"
        out["library"] = os.path.realpath(next(p for p in paths if "mkl" in os.path.basename(p)))
    elif paths:
        blas = [p for p in paths if "blas" in os.path.basename(p)] or paths
        out["library"] = os.path.realpath(blas[0])
        # Debian's reference BLAS lives in .../blas/libblas.so.3 (libblas3).
        if re.search(r"/blas/libblas\.so", out["library"]):
            out["name"] = "reference"
    if torch is not None:
        try:
            m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
            out["torch_blas_info"] = m.group(1) if m else ""
        except Exception:
            pass
        try:
            out["torch_threads"] = int(torch.get_num_threads())
        except Exception:
            pass
    return out
