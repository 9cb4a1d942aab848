"""A KServe ModelServer serving one mem-runtime model document as an MLP in
numpy, for the Open Inference Protocol driver's tests.

Usage: python kserve_mlp.py MODEL_JSON NAME DIGEST --http_port PORT

It serves the model under NAME through KServe's v2 REST API, with the
signature x: FP32 [-1, features] -> y: FP32 [-1, classes], label: INT64 [-1].
An input holding the document's raise_on value raises; one holding hang_on
sleeps for an hour (the client's deadline ends it). The metadata names no
digest: KServe's metadata has no place for one (DIGEST is unused, kept so
the test can run the same command line against a server that would).
"""

import asyncio
import json
import sys

import numpy as np
from kserve import Model, ModelServer
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferResponse


class MLP(Model):
    def __init__(self, name, doc):
        super().__init__(name)
        self.layers = [
            (np.array(l["w"], dtype=np.float64), np.array(l.get("b") or [0.0] * len(l["w"]), dtype=np.float64), bool(l.get("relu")))
            for l in doc["layers"]
        ]
        self.features = self.layers[0][0].shape[1]
        self.classes = self.layers[-1][0].shape[0]
        self.raise_on = doc.get("raise_on")
        self.hang_on = doc.get("hang_on")
        self.ready = True

    def get_input_types(self):
        return [{"name": "x", "datatype": "FP32", "shape": [-1, self.features]}]

    def get_output_types(self):
        return [
            {"name": "y", "datatype": "FP32", "shape": [-1, self.classes]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ]

    async def predict(self, payload, headers=None, response_headers=None):
        names = [i.name for i in payload.inputs]
        if names != ["x"]:
            raise InvalidInput(f"the model takes one input x, got {names}")
        x = payload.inputs[0]
        if x.datatype != "FP32":
            raise InvalidInput(f"input x is FP32, got {x.datatype}")
        if len(x.shape) != 2 or x.shape[1] != self.features:
            raise InvalidInput(f"input x has shape [-1, {self.features}], got {x.shape}")
        a = x.as_numpy().astype(np.float32)
        if self.raise_on is not None and np.any(a == np.float32(self.raise_on)):
            raise RuntimeError("the input holds the raise_on value")
        if self.hang_on is not None and np.any(a == np.float32(self.hang_on)):
            await asyncio.sleep(3600)
        act = a.astype(np.float64)
        for w, b, relu in self.layers:
            act = act @ w.T + b
            if relu:
                act = np.maximum(act, 0)
        y = act.astype(np.float32)
        label = np.argmax(y, axis=1).astype(np.int64)
        outs = {
            "y": InferOutput("y", list(y.shape), "FP32", y.flatten().tolist()),
            "label": InferOutput("label", list(label.shape), "INT64", label.tolist()),
        }
        want = [o.name for o in (payload.request_outputs or [])] or ["y", "label"]
        for n in want:
            if n not in outs:
                raise InvalidInput(f"the model has no output {n}")
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[outs[n] for n in want])


if __name__ == "__main__":
    path, name = sys.argv[1], sys.argv[2]
    with open(path) as f:
        doc = json.load(f)
    ModelServer(enable_grpc=False, workers=1).start([MLP(name, doc)])
