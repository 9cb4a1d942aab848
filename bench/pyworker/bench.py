"""Noop tasks/s of the Python worker (1 process, N processes) against the Go worker, in the same run.

    python bench/pyworker/bench.py [--tasks 20000] [--procs 4] [--rounds 1] [--greyd bin/greyd]

One greyd (server only: its built-in workers off, proofs off) on free loopback
ports. For each round and each setup, TASKS `noop` tasks are queued in a fresh
tenant first (batches of 1000), then the workers start and the clock runs until
the last task submitted has completed (the queue is FIFO per tenant and
priority); then every task is checked completed. `tasks_per_s` includes the
workers' start-up (process, imports, key registration); `steady_tasks_per_s`
is (tasks - 1) / (last finished_at - first finished_at), the server's own
times, which the summary compares; `worker_cpu_us_per_task` is the worker
processes' user + system CPU (from /proc, start-up included) per task, which
other load on the machine disturbs far less. Setups:

- go:    one worker-only greyd (`--role worker`, the Go worker.Pool over HTTP, concurrency 16);
- py-1:  one Python process, Worker(concurrency=16);
- py-N:  N Python processes, each Worker(concurrency=16).

Prints one JSON line per run and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "sdk" / "python" / "src"))

from grey_client import Client, Spec  # noqa: E402

PY_WORKER = """
import sys
from grey_client import Client, Worker
w = Worker(Client(sys.argv[1], tenant=sys.argv[2]), concurrency=16)
w.handle("noop", lambda job: None)
w.run()
"""


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"greyd exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("greyd not ready")


def start_server(greyd: str, tmp: Path) -> tuple[str, subprocess.Popen[bytes]]:
    http, raft, metrics = free_ports(3)
    cfg = tmp / "server.yaml"
    cfg.write_text("worker:\n  enabled: false\nproofs:\n  enabled: false\n")
    log = open(tmp / "server.log", "wb")  # noqa: SIM115
    p = subprocess.Popen(
        [greyd, "--config", str(cfg), "--data-dir", str(tmp / "server"), "--http-addr", f"127.0.0.1:{http}",
         "--raft-addr", f"127.0.0.1:{raft}", "--metrics-addr", f"127.0.0.1:{metrics}", "--node-id", "bench-1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    wait_ready(url, p)
    return url, p


def start_go_worker(greyd: str, url: str, tmp: Path, tenant: str) -> list[subprocess.Popen[bytes]]:
    http, raft, metrics = free_ports(3)
    cfg = tmp / f"worker-{tenant}.yaml"
    cfg.write_text("worker:\n  concurrency: 16\n  kinds: [noop]\n")
    log = open(tmp / f"worker-{tenant}.log", "wb")  # noqa: SIM115
    p = subprocess.Popen(
        [greyd, "--role", "worker", "--servers", url, "--config", str(cfg), "--data-dir", str(tmp / f"w-{tenant}"),
         "--http-addr", f"127.0.0.1:{http}", "--raft-addr", f"127.0.0.1:{raft}",
         "--metrics-addr", f"127.0.0.1:{metrics}", "--node-id", f"gow-{tenant}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return [p]


def start_py_workers(url: str, tenant: str, n: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    script = tmp / "pyworker.py"
    script.write_text(PY_WORKER)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "sdk" / "python" / "src"))
    return [subprocess.Popen([sys.executable, str(script), url, tenant], env=env) for _ in range(n)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), including start-up."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(setup: str, url: str, greyd: str, tasks: int, procs: int, tmp: Path) -> dict[str, object]:
    tenant = "b-" + uuid.uuid4().hex[:10]
    c = Client(url, tenant=tenant, timeout=120)
    first = last = ""
    for i in range(0, tasks, 1000):
        batch = c.submit_batch([Spec(kind="noop")] * min(1000, tasks - i))
        first, last = first or batch[0].id, batch[-1].id
    t0 = time.monotonic()
    if setup == "go":
        ws = start_go_worker(greyd, url, tmp, tenant)
    elif setup == "py-1":
        ws = start_py_workers(url, tenant, 1, tmp)
    else:
        ws = start_py_workers(url, tenant, procs, tmp)
    try:
        t = c.wait(last, timeout=600)
        secs = time.monotonic() - t0
        cpu = sum(cpu_seconds(w.pid) for w in ws)
    finally:
        for w in ws:
            w.send_signal(signal.SIGTERM)
        for w in ws:
            try:
                w.wait(60)
            except subprocess.TimeoutExpired:
                w.kill()
    done = sum(1 for _ in c.list_all(status="completed", limit=1000))
    # steady state, without process start-up: the server's finish times of the first and last task
    f0, f1 = c.get(first).finished_at, t.finished_at
    steady = (tasks - 1) / (f1 - f0).total_seconds() if f0 and f1 and f1 > f0 else 0.0
    c.close()
    return {"setup": setup, "procs": 1 if setup != "py-n" else procs, "tasks": tasks, "completed": done,
            "last_status": t.status, "seconds": round(secs, 3), "tasks_per_s": round(tasks / secs, 1),
            "steady_tasks_per_s": round(steady, 1), "worker_cpu_us_per_task": round(cpu / tasks * 1e6, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--greyd", default=str(ROOT / "bin" / "greyd"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="grey-pybench-") as d:
        tmp = Path(d)
        url, server = start_server(a.greyd, tmp)
        results: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        try:
            for _ in range(a.rounds):
                for setup in ("go", "py-1", "py-n"):
                    r = run(setup, url, a.greyd, a.tasks, a.procs, tmp)
                    print(json.dumps(r), flush=True)
                    results.setdefault(setup, []).append(float(str(r["steady_tasks_per_s"])))
                    cpus.setdefault(setup, []).append(float(str(r["worker_cpu_us_per_task"])))
        finally:
            server.terminate()
            server.wait(30)
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    cpu_med = {k + "_cpu_us": sorted(v)[len(v) // 2] for k, v in cpus.items()}
    ratios = {"py1_vs_go": round(med["py-1"] / med["go"], 3), "pyn_vs_go": round(med["py-n"] / med["go"], 3)}
    print(
        json.dumps(
            {"summary": "median steady tasks/s", **med, "procs": a.procs, "cpus": os.cpu_count(), **ratios, **cpu_med}
        )
    )


if __name__ == "__main__":
    main()
