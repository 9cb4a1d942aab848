"""Unit tests of grey_runtime that need only the standard library and numpy
(the Go tests drive it with real torch and tensorflow). Run from
ai/runtime/python: python -m unittest discover -s tests"""

import io
import json
import os
import struct
import subprocess
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from grey_runtime import protocol, tensors  # noqa: E402
from grey_runtime.errors import FailedPrecondition, InvalidArgument, ModelError  # noqa: E402
from grey_runtime.server import Server  # noqa: E402


def frame(header, body=b""):
    hb = json.dumps(header).encode()
    return struct.pack(">II", 4 + len(hb) + len(body), len(hb)) + hb + body


class ProtocolTest(unittest.TestCase):
    def test_round_trip(self):
        buf = io.BytesIO()
        protocol.write_frame(buf, {"id": 3, "op": "x"}, [b"ab", memoryview(b"cd")])
        buf.seek(0)
        h, body = protocol.read_frame(buf)
        self.assertEqual(h, {"id": 3, "op": "x"})
        self.assertEqual(bytes(body), b"abcd")
        self.assertIsNone(protocol.read_frame(buf))

    def test_bad_frames(self):
        for name, raw in {
            "short length": b"\x00\x00",
            "length below 4": struct.pack(">I", 3) + b"abc",
            "length too big": struct.pack(">I", protocol.MAX_FRAME + 1),
            "truncated": frame({"id": 1})[:-1],
            "header past the frame": struct.pack(">II", 6, 9) + b"{}",
            "not json": struct.pack(">II", 7, 3) + b"nop",
            "not an object": struct.pack(">II", 6, 2) + b"[]",
        }.items():
            with self.subTest(name):
                with self.assertRaises(protocol.ProtocolError):
                    protocol.read_frame(io.BytesIO(raw))


class TensorsTest(unittest.TestCase):
    def test_every_datatype_round_trips(self):
        for dt, npdt in tensors.DTYPES.items():
            with self.subTest(dt):
                a = (np.arange(6) % 2).astype(npdt).reshape(2, 3)
                specs, chunks = tensors.encode([("t", a)])
                self.assertEqual(specs, [{"name": "t", "datatype": dt, "shape": [2, 3]}])
                body = bytearray(b"".join(bytes(c) for c in chunks))
                [(name, b)] = tensors.decode(specs, body)
                self.assertEqual(name, "t")
                self.assertEqual(b.dtype, npdt)
                np.testing.assert_array_equal(a, b)

    def test_big_endian_and_strided_outputs_become_little_endian(self):
        a = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
        specs, chunks = tensors.encode([("t", a)])
        self.assertEqual(bytes(chunks[0]), np.ascontiguousarray(a, dtype="<i4").tobytes())
        self.assertEqual(specs[0]["shape"], [3, 2])

    def test_unsupported_output_dtype(self):
        with self.assertRaises(FailedPrecondition):
            tensors.encode([("h", np.zeros(2, dtype=np.float16))])

    def test_bad_input_specs(self):
        body = bytearray(16)
        for name, specs in {
            "not a list": {"name": "x"},
            "unknown datatype": [{"name": "x", "datatype": "FP16", "shape": [4]}],
            "negative dim": [{"name": "x", "datatype": "FP32", "shape": [-4]}],
            "float dim": [{"name": "x", "datatype": "FP32", "shape": [4.0]}],
            "body too short": [{"name": "x", "datatype": "FP32", "shape": [5]}],
            "body too long": [{"name": "x", "datatype": "FP32", "shape": [3]}],
        }.items():
            with self.subTest(name):
                with self.assertRaises(InvalidArgument):
                    tensors.decode(specs, body)


class ClassifyTest(unittest.TestCase):
    def test_classification(self):
        from grey_runtime.torch_backend import classify

        self.assertIsInstance(classify(RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x5 and 4x3)")), InvalidArgument)
        self.assertIsInstance(classify(RuntimeError("mat1 and mat2 must have the same dtype")), InvalidArgument)
        self.assertIsInstance(classify(RuntimeError("CUDA out of memory")), ModelError)

        class Error(Exception):  # torch.jit.Error's name
            pass

        raised = Error("The following operation failed in the TorchScript interpreter.\n"
                       "  x.size(0) <--- HERE\nbuiltins.ValueError: boom")
        self.assertIsInstance(classify(raised), ModelError)
        self.assertIsInstance(classify(ValueError("size")), ModelError)


class ServerTest(unittest.TestCase):
    def serve(self, raw):
        out = io.BytesIO()
        # Every frame counts as already arrived: the server reads them all
        # before running the first request.
        Server(io.BytesIO(raw), out, log=lambda m: None, readable=lambda: True).serve()
        out.seek(0)
        replies = []
        while True:
            fr = protocol.read_frame(out)
            if fr is None:
                return replies
            replies.append(fr[0])

    def test_ops_and_errors(self):
        replies = self.serve(
            frame({"id": 1, "op": "info"})
            + frame({"id": 2, "op": "infer", "key": "nope", "tensors": []})
            + frame({"id": 3, "op": "load", "key": "k", "framework": "onnx", "path": HERE})
            + frame({"id": 4, "op": "load", "key": "k", "framework": "pytorch", "path": "/nonexistent"})
            + frame({"id": 5, "op": "dance"})
            + frame({"id": 6, "op": "load"})
            + frame({"id": 7, "op": "unload", "key": "nope"})
            + frame({"id": 8, "op": "shutdown"})
            + frame({"id": 9, "op": "info"}))
        self.assertEqual(replies[0]["op"], "ready")
        by = {r["id"]: r for r in replies[1:]}
        self.assertTrue(by[1]["ok"])
        self.assertEqual(by[1]["name"], "grey-python")
        self.assertIn("cpu", by[1]["devices"])
        self.assertEqual(by[2]["error"]["code"], "not_found")
        self.assertEqual(by[3]["error"]["code"], "failed_precondition")
        self.assertEqual(by[4]["error"]["code"], "failed_precondition")
        self.assertEqual(by[5]["error"]["code"], "invalid_argument")
        self.assertEqual(by[6]["error"]["code"], "invalid_argument")
        self.assertTrue(by[7]["ok"])
        self.assertTrue(by[8]["ok"])
        self.assertNotIn(9, by)  # nothing after shutdown

    def test_cancel_drops_a_queued_request(self):
        replies = self.serve(
            frame({"id": 1, "op": "info"})
            + frame({"id": 2, "op": "unload", "key": "x"})
            + frame({"id": 2, "op": "cancel"})
            + frame({"id": 3, "op": "unload", "key": "x"}))
        by = {r["id"]: r for r in replies[1:]}
        self.assertEqual(by[2]["error"]["code"], "canceled")
        self.assertTrue(by[3]["ok"])

    def test_garbage_stops_after_what_was_read(self):
        replies = self.serve(frame({"id": 1, "op": "unload", "key": "x"}) + b"\xff\xff\xff\xff junk")
        self.assertEqual([r["id"] for r in replies], [0, 1])


class ProcessTest(unittest.TestCase):
    def test_python_m_grey_runtime(self):
        # An inherited OPENBLAS_NUM_THREADS does not win over --threads.
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), OPENBLAS_NUM_THREADS="5")
        p = subprocess.run([sys.executable, "-m", "grey_runtime", "--threads", "2"],
                           input=frame({"id": 1, "op": "info"}) + frame({"id": 2, "op": "shutdown"}),
                           capture_output=True, env=env, timeout=120)
        out = io.BytesIO(p.stdout)
        self.assertEqual(protocol.read_frame(out)[0]["op"], "ready")
        info = protocol.read_frame(out)[0]
        self.assertEqual((info["id"], info["threads"]), (1, 2))
        # The BLAS the process multiplies with; OpenBLAS's own pool follows
        # --threads.
        self.assertIn("name", info["blas"])
        if info["blas"]["name"] == "openblas":
            self.assertEqual(info["blas"]["threads"], 2, info["blas"])
            self.assertTrue(info["blas"]["config"].startswith("OpenBLAS"), info["blas"])
        self.assertTrue(protocol.read_frame(out)[0]["ok"])
        self.assertIsNone(protocol.read_frame(out))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_threads(self):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        p = subprocess.run([sys.executable, "-m", "grey_runtime", "--threads", "0"],
                           capture_output=True, env=env, timeout=60)
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
