"""Fixtures: a real greyd built from this repository, on free loopback ports with a temp data dir.

The binaries come from $GREY_GREYD_BIN / $GREY_GREYCTL_BIN, else bin/greyd and
bin/greyctl of the repository when present, else `go build` into a temp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]

#: Kinds greyd accepts at submit but does not run itself: only Python workers serve them.
PY_KINDS = ["resize", "pynoop", "pyfail", "pyslow", "pyecho"]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


_built: dict[str, str] = {}


def binary(name: str) -> str:
    """Path of greyd or greyctl (built once per test session when needed)."""
    env = os.environ.get(f"GREY_{name.upper()}_BIN")
    if env:
        return env
    if name in _built:
        return _built[name]
    local = REPO / "bin" / name
    if local.exists() and os.environ.get("GREY_PYSDK_REBUILD") != "1":
        _built[name] = str(local)
        return str(local)
    if shutil.which("go") is None:
        pytest.skip(f"no {name} binary and no Go toolchain to build one")
    out = Path(tempfile.mkdtemp(prefix="grey-pysdk-bin-")) / name
    subprocess.run(["go", "build", "-o", str(out), f"./cmd/{name}"], cwd=REPO, check=True)
    _built[name] = str(out)
    return str(out)


@dataclass
class Greyd:
    """A running greyd child process."""

    url: str
    data_dir: str
    proc: subprocess.Popen[bytes]
    log_path: str
    admin_token: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """The tail of greyd's log."""
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop greyd (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_greyd(tmp: Path, config: str = "", admin_token: str = "") -> Greyd:
    """Start a greyd on free ports with config and wait until it is ready."""
    http, raft, metrics = _free_ports(3)
    data = tmp / "data"
    cfg = tmp / "grey.yaml"
    kinds = ", ".join(PY_KINDS)
    cfg.write_text(f"tasks:\n  kinds: [{kinds}]\n" + config)
    log_path = tmp / "greyd.log"
    args = [
        binary("greyd"),
        "--config", str(cfg),
        "--data-dir", str(data),
        "--http-addr", f"127.0.0.1:{http}",
        "--raft-addr", f"127.0.0.1:{raft}",
        "--metrics-addr", f"127.0.0.1:{metrics}",
        "--node-id", "py-1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREY_")}
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env)
    g = Greyd(f"http://127.0.0.1:{http}", str(data), proc, str(log_path), admin_token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"greyd exited ({proc.returncode}):\n{g.log()}")
        try:
            if httpx.get(g.url + "/readyz", timeout=1).status_code == 200:
                return g
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    g.stop()
    raise RuntimeError(f"greyd not ready after 60s:\n{g.log()}")


@pytest.fixture(scope="session")
def greyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Greyd]:
    """One greyd in auth mode none for the session."""
    g = start_greyd(tmp_path_factory.mktemp("greyd"))
    yield g
    g.stop()


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test, so tests never see each other's tasks."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def greyctl() -> str:
    """Path of greyctl."""
    return binary("greyctl")
