"""TorchScript models (torch.jit.load), imported only when one loads."""

import os
import re
import time

import numpy as np

from .errors import FailedPrecondition, InvalidArgument, ModelError

_torch = None


def setup(threads):
    """Import torch and set it up for reproducible CPU results: the thread
    count (one by default: a reduction split over a different number of
    threads may round differently, and several runtimes share the worker's
    cores) and deterministic algorithms where torch has them."""
    global _torch
    if _torch is not None:
        return _torch
    # cuBLAS is deterministic only with a fixed workspace; it must be set
    # before CUDA initialises.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        raise FailedPrecondition("this runtime's python cannot import torch: %s" % e) from None
    torch.set_num_threads(threads)
    # OpenBLAS (Debian's libblas.so.3 when libopenblas0-pthread is
    # installed) has its own pool that set_num_threads does not reach.
    from . import blas

    blas.set_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only allowed once, before parallel work)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except TypeError:  # torch before 1.11 has no warn_only
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    _torch = torch
    return torch


def loaded():
    """The torch module when it has been imported, else None."""
    import sys

    return sys.modules.get("torch")


def version():
    """torch's version and its devices ("cpu", "cuda:N"), or (None,
    ["cpu"]) when torch cannot be imported."""
    try:
        import torch
    except Exception:
        return None, ["cpu"]
    devices = ["cpu"]
    try:
        if torch.cuda.is_available():
            devices += ["cuda:%d" % i for i in range(torch.cuda.device_count())]
    except Exception:
        pass
    return torch.__version__, devices


def pick_device(torch, want):
    """The torch device for a load's device ("", "auto", "cpu", "cuda",
    "cuda:N")."""
    if want in ("", "auto"):
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FailedPrecondition("device %s asked for, but torch sees no CUDA device" % want)
        if want == "cuda":
            want = "cuda:0"
    elif want != "cpu":
        raise InvalidArgument("device %r is not cpu, cuda or cuda:N" % want)
    return torch.device(want)


class TorchModel:
    """A loaded TorchScript module on one device."""

    def __init__(self, path, device, threads):
        torch = setup(threads)
        self.torch = torch
        self.device = pick_device(torch, device)
        if os.path.isdir(path):
            raise FailedPrecondition("%s is a directory, not a TorchScript file (a SavedModel is a tensorflow model)" % path)
        try:
            self.module = torch.jit.load(path, map_location=self.device)
        except Exception as e:
            raise FailedPrecondition("not a TorchScript model: %s" % _last_line(str(e))) from None
        self.module.eval()
        # forward's arguments past self: the count of inputs it takes.
        # forward's parameters past self: their names, and how many are
        # required (no default).
        self.params = None
        self.required = 0
        try:
            args = self.module.forward.schema.arguments[1:]
            self.params = [a.name for a in args]
            self.required = len([a for a in args if a.default_value is None])
        except Exception:
            pass

    def bind(self, inputs):
        """The call's arguments: by name when every input is named after a
        parameter of forward, by position when they are named input__0..N
        (Triton's PyTorch convention); anything else is invalid_argument."""
        names = [n for n, _ in inputs]
        if len(set(names)) != len(names):
            raise InvalidArgument("an input is given twice: %s" % ", ".join(names))
        if self.params is None:  # no schema: positional, as given
            return [a for _, a in inputs], {}
        if all(n in self.params for n in names):
            missing = [p for p in self.params[:self.required] if p not in names]
            if missing:
                raise InvalidArgument("the model's inputs are %s; missing %s" % (", ".join(self.params), ", ".join(missing)))
            return [], dict(inputs)
        idx = [_POSITIONAL.fullmatch(n) for n in names]
        if all(idx):
            order = sorted(int(m.group(1)) for m in idx)
            if order != list(range(len(order))) or not self.required <= len(order) <= len(self.params):
                raise InvalidArgument("positional inputs must be input__0..input__%d (the model takes %d to %d), got %s" % (
                    len(self.params) - 1, self.required, len(self.params), ", ".join(names)))
            by = {int(m.group(1)): a for m, (_, a) in zip(idx, inputs)}
            return [by[i] for i in order], {}
        raise InvalidArgument("the model's inputs are %s (or input__0..input__%d by position); got %s" % (
            ", ".join(self.params), len(self.params) - 1, ", ".join(names)))

    def infer(self, inputs, names):
        torch = self.torch
        args, kwargs = self.bind(inputs)

        def tensor(name, arr):
            try:
                t = torch.from_numpy(arr)
            except TypeError as e:
                raise InvalidArgument("input %r: torch cannot take %s: %s" % (name, arr.dtype, e)) from None
            return t.to(self.device)

        args = [tensor("input__%d" % i, a) for i, a in enumerate(args)]
        kwargs = {k: tensor(k, a) for k, a in kwargs.items()}
        try:
            with torch.inference_mode():
                out = self.module(*args, **kwargs)
        except Exception as e:
            raise classify(e) from None
        named = flatten(out)
        if names:
            have = dict(named)
            missing = [n for n in names if n not in have]
            if missing:
                raise InvalidArgument("the model has no output %s (it has %s)" % (", ".join(missing), ", ".join(have)))
            named = [(n, have[n]) for n in names]
        result = []
        for name, t in named:
            if not isinstance(t, torch.Tensor):
                raise FailedPrecondition("output %r is a %s, not a tensor" % (name, type(t).__name__))
            result.append((name, t.detach().cpu().contiguous().numpy()))
        return result


def flatten(out):
    """Outputs named as Triton names them: a tensor is output__0, a tuple or
    list output__0..N, a dict its keys."""
    if isinstance(out, dict):
        return [(str(k), v) for k, v in out.items()]
    if isinstance(out, (tuple, list)):
        return [("output__%d" % i, v) for i, v in enumerate(out)]
    return [("output__0", out)]


_POSITIONAL = re.compile(r"(?i)input__(\d+)")

# A RuntimeError from an operator whose message says the input did not fit.
_INPUT_MISMATCH = re.compile(
    r"shape|size|dimension|dtype|scalar type|expected .*(input|argument)|argument\(s\)|"
    r"must have the same|cannot be multiplied|channels|Expected .* got", re.IGNORECASE)


def classify(e):
    """The protocol error for an exception the model raised: an operator's
    complaint about its input's shape or type is invalid_argument, anything
    the model's own code raised (or any other failure) is model_error."""
    msg = _last_line(str(e))
    kind = type(e).__name__
    if kind == "Error" and msg.startswith("builtins."):
        return ModelError(msg)  # raise ... in the TorchScript source
    if msg.startswith("RuntimeError: "):
        msg = msg[len("RuntimeError: "):]
        kind = "RuntimeError"
    if kind == "RuntimeError" and _INPUT_MISMATCH.search(msg):
        return InvalidArgument(msg)
    return ModelError("%s: %s" % (kind, msg))


def _last_line(s):
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else s
