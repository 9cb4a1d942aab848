"""`pip install ./sdk/python` in a fresh venv, then the example worker runs `resize` tasks submitted from greyctl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

from conftest import REPO, Greyd


def test_pip_install_and_example_worker(greyd: Greyd, greyctl: str, tenant: str, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GREY_") and k != "PYTHONPATH"}
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO / "sdk" / "python")],
        capture_output=True,
        text=True,
        timeout=600,
        env=base,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # the installed package, not the source tree
    where = subprocess.run([str(py), "-c", "import grey_client; print(grey_client.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=base)  # fmt: skip
    assert str(env_dir) in where.stdout

    wenv = dict(base, GREY_SERVER=greyd.url, GREY_TENANT=tenant, GREY_WORKER_KEY=str(tmp_path / "w.key"))
    example = REPO / "examples" / "python" / "resize_worker.py"
    assert len([ln for ln in example.read_text().splitlines() if ln.strip()]) <= 10  # a ten-line worker
    w = subprocess.Popen([str(py), str(example)], env=wenv, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        ctl = dict(base, GREY_SERVER=greyd.url, GREY_TENANT=tenant)
        out = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # greyd accepts the kind once a worker has asked for it (or tasks.kinds lists it)
            r = subprocess.run(
                [greyctl, "task", "submit", "--kind", "resize", "--payload", '{"url":"s3://b/cat.png","width":320}',
                 "--wait", "-o", "json"],
                capture_output=True, text=True, timeout=60, env=ctl,
            )  # fmt: skip
            if r.returncode == 0:
                out = json.loads(r.stdout)
                break
            time.sleep(0.2)
        assert out is not None, r.stdout + r.stderr
        assert out["status"] == "completed", out
        assert out["result"] == {"url": "s3://b/cat.png", "width": 320, "resized": True}
        v = subprocess.run([greyctl, "proof", "verify", out["id"]], capture_output=True, text=True, timeout=60, env=ctl)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        w.send_signal(signal.SIGTERM)
        try:
            code = w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
            raise
    assert code == 0, w.stdout.read() if w.stdout else ""
    assert sys.version_info >= (3, 10)
