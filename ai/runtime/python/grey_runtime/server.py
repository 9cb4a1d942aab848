"""The runtime's loop: a reader thread takes frames off stdin (so that a
cancel reaches a request still queued), the main thread runs requests one
at a time in arrival order and writes the replies to stdout."""

import collections
import os
import sys
import threading
import time
import traceback

from . import PROTOCOL, VERSION, protocol, tensors
from .errors import Canceled, FailedPrecondition, InvalidArgument, NotFound, RuntimeFault


class Server:
    """Serves requests from the binary file rfile, answering on wfile."""

    def __init__(self, rfile, wfile, threads=1, log=None):
        self.rfile = rfile
        self.wfile = wfile
        self.threads = threads
        self.log = log or (lambda msg: print("grey_runtime: " + msg, file=sys.stderr, flush=True))
        self.models = {}  # key -> (model, load reply)
        self.queue = collections.deque()
        self.canceled = set()
        self.cond = threading.Condition()
        self.eof = False
        self.stop = False

    # reader thread

    def _read_loop(self):
        try:
            while True:
                fr = protocol.read_frame(self.rfile)
                if fr is None:
                    break
                header, body = fr
                with self.cond:
                    if header.get("op") == "cancel":
                        # Only a request still queued can be dropped.
                        cid = header.get("id")
                        if any(h.get("id") == cid for h, _ in self.queue):
                            self.canceled.add(cid)
                    else:
                        self.queue.append((header, body))
                    self.cond.notify()
        except protocol.ProtocolError as e:
            self.log("bad frame, stopping: %s" % e)
        except Exception:
            self.log("reader failed:\n" + traceback.format_exc())
        with self.cond:
            self.eof = True
            self.cond.notify()

    # main thread

    def serve(self):
        """Run until shutdown or the end of stdin."""
        threading.Thread(target=self._read_loop, name="grey-runtime-reader", daemon=True).start()
        protocol.write_frame(self.wfile, {"id": 0, "op": "ready", "ok": True, "pid": os.getpid(),
                                          "version": VERSION, "protocol": PROTOCOL})
        while not self.stop:
            with self.cond:
                while not self.queue and not self.eof:
                    self.cond.wait()
                if not self.queue:
                    return
                header, body = self.queue.popleft()
                rid = header.get("id")
                canceled = rid in self.canceled
                self.canceled.discard(rid)
            try:
                if canceled:
                    raise Canceled("canceled before it started")
                reply, chunks = self.handle(header, body)
                reply.update(id=rid, ok=True)
            except RuntimeFault as e:
                reply, chunks = {"id": rid, "ok": False, "error": {"code": e.code, "message": e.message}}, ()
            except Exception as e:
                self.log("internal error on %s:\n%s" % (header.get("op"), traceback.format_exc()))
                reply, chunks = {"id": rid, "ok": False, "error": {"code": "internal", "message": "%s: %s" % (type(e).__name__, e)}}, ()
            protocol.write_frame(self.wfile, reply, chunks)

    def handle(self, h, body):
        op = h.get("op")
        fn = getattr(self, "op_" + str(op), None)
        if fn is None:
            raise InvalidArgument("unknown op %r" % op)
        return fn(h, body)

    def op_info(self, h, body):
        from . import tf_backend, torch_backend

        tv, devices = torch_backend.version()
        frameworks = {}
        if tv:
            frameworks["pytorch"] = tv
        fv = tf_backend.version()
        if fv:
            frameworks["tensorflow"] = fv
        return {"name": "grey-python", "version": VERSION, "python": sys.version.split()[0],
                "numpy": _numpy_version(), "frameworks": frameworks, "devices": devices,
                "threads": self.threads}, ()

    def op_load(self, h, body):
        key = h.get("key")
        if not key or not isinstance(key, str):
            raise InvalidArgument("a load needs a key")
        if key in self.models:
            return dict(self.models[key][1]), ()
        fw, path, device = h.get("framework"), h.get("path"), h.get("device") or ""
        if not isinstance(path, str) or not os.path.exists(path):
            raise FailedPrecondition("model path %r does not exist" % path)
        start = time.monotonic()
        if fw == "pytorch":
            from .torch_backend import TorchModel
            m = TorchModel(path, device, self.threads)
            dev = str(m.device)
        elif fw == "tensorflow":
            from .tf_backend import TFModel
            m = TFModel(path, device, self.threads)
            dev = m.device
        else:
            raise FailedPrecondition("framework %r is not pytorch or tensorflow" % fw)
        reply = {"device": dev, "took_ms": (time.monotonic() - start) * 1000.0}
        self.models[key] = (m, reply)
        return dict(reply), ()

    def op_unload(self, h, body):
        self.models.pop(h.get("key"), None)
        return {}, ()

    def op_infer(self, h, body):
        key = h.get("key")
        if key not in self.models:
            raise NotFound("no model is loaded under %r" % key)
        model = self.models[key][0]
        inputs = tensors.decode(h.get("tensors"), body)
        names = h.get("outputs") or []
        outputs = model.infer(inputs, names)
        specs, chunks = tensors.encode(outputs)
        return {"tensors": specs}, chunks

    def op_shutdown(self, h, body):
        self.stop = True
        return {}, ()


def _numpy_version():
    import numpy

    return numpy.__version__
