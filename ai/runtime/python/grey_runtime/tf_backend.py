"""TensorFlow SavedModels (tf.saved_model.load, the "serving_default"
signature), imported only when one loads."""

import os
import time

from .errors import FailedPrecondition, InvalidArgument, ModelError

_tf = None


def setup(threads):
    """Import tensorflow and set it up for reproducible CPU results: the
    thread pools sized like torch's (one by default) and op determinism."""
    global _tf
    if _tf is not None:
        return _tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except Exception as e:
        raise FailedPrecondition("this runtime's python cannot import tensorflow: %s" % e) from None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # the runtime is already initialised
    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError:
        pass  # tensorflow before 2.9
    _tf = tf
    return tf


def version():
    """tensorflow's version without importing it (importing costs seconds
    and about 1 GiB), or None when it is not installed."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return None
    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tf-nightly"):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return "unknown"


def pick_device(tf, want):
    """The tf device string for a load's device."""
    gpus = tf.config.list_logical_devices("GPU")
    if want in ("", "auto"):
        return ("/GPU:0", "cuda:0") if gpus else ("/CPU:0", "cpu")
    if want == "cpu":
        return "/CPU:0", "cpu"
    if want.startswith("cuda"):
        idx = 0 if want == "cuda" else int(want.split(":", 1)[1])
        if idx >= len(gpus):
            raise FailedPrecondition("device %s asked for, but tensorflow sees %d GPU(s)" % (want, len(gpus)))
        return "/GPU:%d" % idx, "cuda:%d" % idx
    raise InvalidArgument("device %r is not cpu, cuda or cuda:N" % want)


class TFModel:
    """A loaded SavedModel's serving_default signature."""

    def __init__(self, path, device, threads):
        tf = setup(threads)
        self.tf = tf
        self.tf_device, self.device = pick_device(tf, device)
        if not os.path.isdir(path):
            raise FailedPrecondition("%s is not a directory, so not a SavedModel (a TorchScript file is a pytorch model)" % path)
        try:
            with tf.device(self.tf_device):
                self.obj = tf.saved_model.load(path)
        except Exception as e:
            raise FailedPrecondition("not a SavedModel: %s" % _first_line(str(e))) from None
        sig = getattr(self.obj, "signatures", {}).get("serving_default")
        if sig is None:
            raise FailedPrecondition("the SavedModel has no serving_default signature")
        self.sig = sig
        _, self.inputs = sig.structured_input_signature  # name -> TensorSpec
        outs = sig.structured_outputs
        self.outputs = sorted(outs.keys()) if isinstance(outs, dict) else None

    def infer(self, inputs, names):
        tf = self.tf
        given = {}
        for name, arr in inputs:
            if name in given:
                raise InvalidArgument("input %r is given twice" % name)
            given[name] = arr
        missing = [n for n in self.inputs if n not in given]
        unknown = [n for n in given if n not in self.inputs]
        if missing or unknown:
            raise InvalidArgument("the model's inputs are %s; missing %s, unknown %s" % (
                ", ".join(sorted(self.inputs)), ", ".join(missing) or "none", ", ".join(unknown) or "none"))
        feed = {}
        for name, spec in self.inputs.items():
            arr = given[name]
            if arr.dtype != spec.dtype.as_numpy_dtype:
                raise InvalidArgument("input %r is %s, the model wants %s" % (name, arr.dtype, spec.dtype.name))
            if not spec.shape.is_compatible_with(arr.shape):
                raise InvalidArgument("input %r has shape %s, the model wants %s" % (name, list(arr.shape), spec.shape))
            feed[name] = arr
        if names and self.outputs is not None:
            missing = [n for n in names if n not in self.outputs]
            if missing:
                raise InvalidArgument("the model has no output %s (it has %s)" % (", ".join(missing), ", ".join(self.outputs)))
        try:
            with tf.device(self.tf_device):
                out = self.sig(**{k: tf.constant(v) for k, v in feed.items()})
        except Exception as e:
            # The inputs matched the signature: what fails now is the model.
            raise ModelError("%s: %s" % (type(e).__name__, _first_line(str(e)))) from None
        if not isinstance(out, dict):
            out = {"output_0": out}
        # All outputs in name order: a signature's dict order is not stable.
        keys = names if names else sorted(out.keys())
        missing = [k for k in keys if k not in out]
        if missing:
            raise InvalidArgument("the model has no output %s (it has %s)" % (", ".join(missing), ", ".join(sorted(out))))
        return [(k, out[k].numpy()) for k in keys]


def _first_line(s):
    for l in s.strip().splitlines():
        if l.strip():
            return l.strip()
    return s
