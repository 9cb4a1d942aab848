"""The runtime's loop: between requests it reads every frame that has
arrived (so that a cancel reaches a request still queued), then runs the
oldest request and writes its reply. Requests run one at a time, in
arrival order, on the main thread."""

import collections
import os
import sys
import select
import time
import traceback

from . import PROTOCOL, VERSION, protocol, tensors
from .errors import Canceled, FailedPrecondition, InvalidArgument, NotFound, RuntimeFault


class Server:
    """Serves requests from the binary file rfile, answering on wfile."""

    def __init__(self, rfile, wfile, threads=1, log=None, readable=None):
        """readable, when given, tells whether a frame can be read without
        blocking (tests over in-memory streams); by default select() on
        rfile's descriptor, which must then be unbuffered."""
        self.rfile = rfile
        if readable is not None:
            self._readable = readable
        self.wfile = wfile
        self.threads = threads
        self.log = log or (lambda msg: print("grey_runtime: " + msg, file=sys.stderr, flush=True))
        self.models = {}  # key -> (model, load reply)
        self.queue = collections.deque()
        self.stop = False

    def _take(self, header, body):
        """Queue a request, or apply a cancel to a queued one."""
        if header.get("op") == "cancel":
            cid = header.get("id")
            for i, (h, _) in enumerate(self.queue):
                if h.get("id") == cid:
                    self.queue[i] = ({"id": cid, "op": "_canceled"}, b"")
                    break
            return
        self.queue.append((header, body))

    def _read(self, block):
        """Read frames into the queue: one, waiting, when block; then every
        one that arrived meanwhile. Returns False at the end of stdin."""
        while True:
            if not block and not self._readable():
                return True
            try:
                fr = protocol.read_frame(self.rfile)
            except protocol.ProtocolError as e:
                self.log("bad frame, stopping: %s" % e)
                return False
            if fr is None:
                return False
            self._take(*fr)
            block = False

    def _readable(self):
        # rfile is unbuffered (see __main__), so the descriptor tells all.
        try:
            r, _, _ = select.select([self.rfile], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(r)

    def serve(self):
        """Run until shutdown or the end of stdin. Frames are read between
        requests (so a cancel reaches a request still queued); requests run
        one at a time in arrival order."""
        protocol.write_frame(self.wfile, {"id": 0, "op": "ready", "ok": True, "pid": os.getpid(),
                                          "version": VERSION, "protocol": PROTOCOL})
        eof = False
        while not self.stop:
            if not eof:
                eof = not self._read(block=not self.queue)
            if not self.queue:
                return
            header, body = self.queue.popleft()
            rid = header.get("id")
            try:
                if header.get("op") == "_canceled":
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

        from . import blas

        tv, devices = torch_backend.version()
        frameworks = {}
        if tv:
            frameworks["pytorch"] = tv
        fv = tf_backend.version()
        if fv:
            frameworks["tensorflow"] = fv
        return {"name": "grey-python", "version": VERSION, "python": sys.version.split()[0],
                "numpy": _numpy_version(), "frameworks": frameworks, "devices": devices,
                "threads": self.threads, "blas": blas.describe(torch_backend.loaded())}, ()

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
        size = sum(len(c) for c in chunks)
        if size > protocol.MAX_FRAME - protocol.MAX_HEADER:
            # A frame past the limit would break the stream for every call.
            raise FailedPrecondition("the outputs hold %d bytes, past the frame limit of %d" % (
                size, protocol.MAX_FRAME - protocol.MAX_HEADER))
        return {"tensors": specs}, chunks

    def op_shutdown(self, h, body):
        self.stop = True
        return {}, ()


def _numpy_version():
    import numpy

    return numpy.__version__
