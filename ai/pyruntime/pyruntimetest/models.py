"""Builds the small test models of Grey's inference tests with the real
frameworks, and runs each once directly (as the runtime would: loaded back
from its file, one thread) to record the expected outputs.

Usage: python models.py KIND OUTDIR BATCH
Writes OUTDIR/model (a TorchScript file or a SavedModel directory) and
OUTDIR/manifest.json naming the inputs' and expected outputs' raw
little-endian files.
"""

import json
import os
import sys

import numpy as np

DT = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "int32": "INT32",
      "uint8": "UINT8", "bool": "BOOL", "int8": "INT8", "int16": "INT16"}


def dump(outdir, tag, named):
    out = []
    for i, (name, arr) in enumerate(named):
        arr = np.ascontiguousarray(arr)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        f = "%s_%d.bin" % (tag, i)
        with open(os.path.join(outdir, f), "wb") as fh:
            fh.write(arr.tobytes())
        out.append({"name": name, "datatype": DT[arr.dtype.name], "shape": list(arr.shape), "file": f})
    return out


def torch_models():
    import torch

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = torch.nn.Linear(8, 16)
            self.l2 = torch.nn.Linear(16, 4)

        def forward(self, x):
            return self.l2(torch.relu(self.l1(x)))

    class Wide(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = torch.nn.Linear(8, 256)
            self.l2 = torch.nn.Linear(256, 256)
            self.l3 = torch.nn.Linear(256, 4)

        def forward(self, x):
            return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(2)
            self.fc = torch.nn.Linear(16, 3)

        def forward(self, x):
            h = self.pool(torch.relu(self.conv(x))).flatten(1)
            logits = self.fc(h)
            return {"logits": logits, "label": torch.argmax(logits, dim=1)}

    class Pair(torch.nn.Module):
        def forward(self, a, b):
            return a + b, a * b

    class Raises(torch.nn.Module):
        def forward(self, x):
            if bool(x.sum() > 0):
                raise ValueError("the test model refuses positive sums")
            return x

    class Hangs(torch.nn.Module):
        def forward(self, x):
            i = 0
            while i >= 0:
                i = i + 1
            return x

    class Prints(torch.nn.Module):
        def forward(self, x):
            print("a model that prints must not corrupt the protocol")
            return x * 2

    return {"mlp": MLP, "wide": Wide, "cnn": CNN, "pair": Pair, "raises": Raises, "hangs": Hangs, "prints": Prints}


def build_torch(kind, outdir, batch):
    import torch

    torch.manual_seed(7)
    torch.set_num_threads(1)
    m = torch.jit.script(torch_models()[kind]())
    path = os.path.join(outdir, "model")
    torch.jit.save(m, path)
    rng = np.random.default_rng(11)
    if kind == "cnn":
        inputs = [("x", rng.standard_normal((batch, 1, 8, 8), dtype=np.float32))]
    elif kind == "pair":
        inputs = [("a", rng.standard_normal((batch, 3))), ("b", rng.standard_normal((batch, 3)))]
    elif kind == "raises":
        inputs = [("x", np.abs(rng.standard_normal((batch, 2), dtype=np.float32)) + 1)]
    else:
        inputs = [("x", rng.standard_normal((batch, 8), dtype=np.float32))]
    outputs = []
    if kind not in ("raises", "hangs"):
        loaded = torch.jit.load(path, map_location="cpu")
        loaded.eval()
        with torch.inference_mode():
            out = loaded(*[torch.from_numpy(a.copy()) for _, a in inputs])
        if isinstance(out, dict):
            outputs = [(k, v.numpy()) for k, v in out.items()]
        elif isinstance(out, (tuple, list)):
            outputs = [("output__%d" % i, v.numpy()) for i, v in enumerate(out)]
        else:
            outputs = [("output__0", out.numpy())]
    return inputs, outputs, "pytorch", torch.__version__


def build_tf(kind, outdir, batch):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(5)

    class Linear(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.random.normal([4, 3], seed=3))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([None, 3], tf.float32, name="bias")])
        def serve(self, x, bias):
            y = tf.matmul(x, self.w) + bias
            return {"y": y, "top": tf.argmax(y, axis=1)}

    class Raises(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            tf.debugging.assert_negative(x, message="the test model refuses non-negative inputs")
            return {"y": x * 2}

    m = {"savedmodel": Linear, "savedmodel_raises": Raises}[kind]()
    path = os.path.join(outdir, "model")
    tf.saved_model.save(m, path, signatures={"serving_default": m.serve})
    rng = np.random.default_rng(13)
    inputs = [("x", rng.standard_normal((batch, 4), dtype=np.float32))]
    if kind == "savedmodel":
        inputs.append(("bias", rng.standard_normal((batch, 3), dtype=np.float32)))
    else:
        inputs[0] = ("x", np.abs(inputs[0][1]))
    outputs = []
    if kind == "savedmodel":
        sig = tf.saved_model.load(path).signatures["serving_default"]
        out = sig(**{k: tf.constant(v) for k, v in inputs})
        outputs = [(k, out[k].numpy()) for k in sorted(out)]
    return inputs, outputs, "tensorflow", tf.__version__


def main():
    kind, outdir, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(outdir, exist_ok=True)
    if kind.startswith("savedmodel"):
        inputs, outputs, fw, ver = build_tf(kind, outdir, batch)
    else:
        inputs, outputs, fw, ver = build_torch(kind, outdir, batch)
    manifest = {"framework": fw, "framework_version": ver, "path": "model",
                "inputs": dump(outdir, "in", inputs), "outputs": dump(outdir, "out", outputs)}
    with open(os.path.join(outdir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh)


if __name__ == "__main__":
    main()
