"""Proofs: RFC 8785, DSSE + ed25519, and agreement with the Go verifier (greyctl proof verify)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Greyd

from grey_client import Client, Job, ProofError, Spec, Worker, proof
from grey_client.models import Envelope, from_json, to_json

# --- RFC 8785 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        # RFC 8785 appendix B number samples
        (0.0, "0"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (9007199254740994.0, "9007199254740994"),
        (295147905179352830000.0, "295147905179352830000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (333333333.3333332, "333333333.3333332"),
        (1e23, "1e+23"),
        (100, "100"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (123e-20, "1.23e-18"),
    ],
)
def test_numbers(value: float, want: str) -> None:
    assert proof.canonicalize(value).decode() == want


def test_rfc8785_sample() -> None:
    # The example of RFC 8785 §3.2.3 (sorting by UTF-16 code units, escapes, numbers).
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    want = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert proof.canonicalize(json.loads(text)).decode() == want
    sort = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    assert [k for k in json.loads(proof.canonicalize(sort))] == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]


def test_jcs_matches_go(tmp_path: Path) -> None:
    """The Python and Go canonical forms of the same values are byte-identical (proof.Canonicalize)."""
    values: list[Any] = [
        {"b": [1, 2.5, 1e100, -0.0, 1e-7], "a": 'é\u2028\t"\\', "c": None, "d": True},
        [1, 1.0, 1e2, 12345678901234567890, 0.1, 1 / 3],
        "\u0000\u001f\u007f<>&",
        {"\U0001f600": 1, "\ufb33": 2, "é": 3},
    ]
    prog = tmp_path / "main.go"
    prog.write_text(
        "package main\n"
        'import ("bufio"; "fmt"; "os"; "github.com/grey-distributed/grey/proof")\n'
        "func main() { s := bufio.NewScanner(os.Stdin); s.Buffer(nil, 1<<20)\n"
        "  for s.Scan() { b, err := proof.Canonicalize(s.Bytes())\n"
        "    if err != nil { panic(err) }; fmt.Println(string(b)) } }\n"
    )
    if not _have_go():
        pytest.skip("no Go toolchain")
    inp = "\n".join(json.dumps(v) for v in values) + "\n"
    out = subprocess.run(
        ["go", "run", str(prog)], cwd=REPO, input=inp, capture_output=True, text=True, check=True, timeout=300
    ).stdout.split("\n")[:-1]
    assert out == [proof.canonicalize(v).decode() for v in values]


def _have_go() -> bool:
    import shutil

    return shutil.which("go") is not None


# --- keys and envelopes ------------------------------------------------------------


def test_key_file_like_greyd(tmp_path: Path) -> None:
    p = tmp_path / "k" / "node.key"
    k1 = proof.SigningKey.load_or_create(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert p.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    k2 = proof.SigningKey.load_or_create(p)
    assert k1.key_id == k2.key_id and len(k1.key_id) == 32
    os.chmod(p, 0o644)
    with pytest.raises(PermissionError):
        proof.SigningKey.load_or_create(p)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(ValueError):
        proof.SigningKey.load_or_create(bad)


def _runs(n: int) -> list[proof.Run]:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    return [
        proof.Run(
            task_id=f"t-{i}",
            kind="echo",
            payload=json.dumps({"i": i}).encode(),
            output=json.dumps({"o": i}).encode(),
            attempt=1,
            executor={"name": "x", "version": "1", "digest": "sha256:00"},
            started_at=now,
            finished_at=now,
        )
        for i in range(n)
    ]


def test_sign_verify_roundtrip_and_tampering() -> None:
    k = proof.SigningKey.generate()
    env = proof.sign(k, "acme", "node-py", _runs(3))
    ring = proof.key_ring([k.public])
    ind, outd = proof.json_digest({"i": 1}), "sha256:" + proof.json_digest({"o": 1})
    st = proof.verify(env, ring, task_id="t-1", tenant_id="acme", input_digest=ind, output_digest=outd)
    assert st.node_id == "node-py" and len(st.executions) == 3
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("task id differs", env, {"task_id": "t-9"}),
        ("tenant id differs", env, {"tenant_id": "other"}),
        ("output digest differs", env, {"task_id": "t-0", "output_digest": proof.json_digest({"o": 2})}),
        ("input digest differs", env, {"task_id": "t-0", "input_digest": proof.json_digest({"i": 2})}),
        ("name the task", env, {"output_digest": proof.json_digest({"o": 0})}),
    ]
    body = json.loads(base64.b64decode(env["payload"]))
    body["predicate"]["executions"][0]["attempt"] = 2
    forged = dict(env, payload=base64.b64encode(json.dumps(body).encode()).decode())
    cases.append(("does not verify", forged, {}))
    cases.append(("payload type", dict(env, payloadType="application/json"), {}))
    cases.append(("no signatures", dict(env, signatures=[]), {}))
    cases.append(("malformed", dict(env, signatures=[{"keyid": k.key_id, "sig": "AAAA"}]), {}))
    cases.append(("not valid base64", dict(env, payload="***"), {}))
    for want, e, kw in cases:
        with pytest.raises(ProofError, match=want):
            proof.verify(e, ring, **kw)
    other = proof.key_ring([proof.SigningKey.generate().public])
    with pytest.raises(ProofError, match="unknown key id"):
        proof.verify(env, other)
    nokid = dict(env, signatures=[{"sig": env["signatures"][0]["sig"]}])
    proof.verify(nokid, ring)  # tried against every key
    with pytest.raises(ProofError, match="without key id"):
        proof.verify(nokid, other)
    with pytest.raises(ValueError):
        proof.sign(k, "acme", "n", [])


def test_invalid_statements_refused() -> None:
    k = proof.SigningKey.generate()
    ring = proof.key_ring([k.public])

    def signed(st: dict[str, Any]) -> dict[str, Any]:
        b = json.dumps(st).encode()
        sig = k.private.sign(proof.pae(proof.PAYLOAD_TYPE, b))
        return {"payloadType": proof.PAYLOAD_TYPE, "payload": base64.b64encode(b).decode(),
                "signatures": [{"keyid": k.key_id, "sig": base64.b64encode(sig).decode()}]}  # fmt: skip

    good = json.loads(base64.b64decode(proof.sign(k, "acme", "n", _runs(2))["payload"]))
    mutations: dict[str, Callable[[dict[str, Any]], Any]] = {
        "_type": lambda s: s.update(_type="x"),
        "no executions": lambda s: s["predicate"].update(executions=[]),
        "subjects for": lambda s: s["subject"].pop(),
        "tenant_id": lambda s: s["predicate"].update(tenant_id=""),
        "appears twice": lambda s: s["predicate"]["executions"][1].update(task_id="t-0"),
        "is named": lambda s: s["subject"][0].update(name="task-output/zz"),
        "output digest": lambda s: s["subject"][0].update(digest={"sha256": "ABC"}),
    }
    for want, mut in mutations.items():
        st = json.loads(json.dumps(good))
        mut(st)
        with pytest.raises(ProofError, match=want):
            proof.verify(signed(st), ring)


# --- against greyd and the Go verifier ------------------------------------------------


def greyctl_verify(greyctl: str, greyd: Greyd, tenant: str, task_id: str, env: dict[str, Any] | None,
                   key_b64: str | None, tmp: Path) -> subprocess.CompletedProcess[str]:  # fmt: skip
    args = [greyctl, "--server", greyd.url, "--tenant", tenant, "proof", "verify", task_id]
    if env is not None:
        f = tmp / f"env-{task_id}.json"
        f.write_text(json.dumps(env))
        args += ["--file", str(f)]
    if key_b64 is not None:
        kf = tmp / "node.pub"
        kf.write_text(key_b64)
        args += ["--key", str(kf)]
    envv = {k: v for k, v in os.environ.items() if not k.startswith("GREY_")}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=envv)


def test_python_and_go_agree_on_greyd_proofs(greyd: Greyd, greyctl: str, tenant: str, tmp_path: Path) -> None:
    """Proofs signed by greyd's Go workers: both verifiers accept them, and both refuse tampered ones."""
    with Client(greyd.url, tenant=tenant) as c:
        payloads: list[Any] = [{"z": 1, "a": [1.0, 1e2, "é\n"], "m": {"b": None}}, [3, 2, 1], "plain", 12.5]
        ts = c.submit_batch([Spec(kind="echo", payload=p) for p in payloads])
        for t in ts:
            assert c.wait(t.id, timeout=30).status == "completed"
        keys = c.node_keys()
        for t in ts:
            rec = c.proof(t.id)
            assert rec.verified, rec.problem
            st = c.verify_proof(t.id, rec)  # Python: signature + digests
            assert st.find(t.id) is not None
            go = greyctl_verify(greyctl, greyd, tenant, t.id, to_json(rec.envelope), None, tmp_path)
            assert go.returncode == 0, go.stdout + go.stderr
        # tampered: change the output digest of the first task, keep the signature
        rec = c.proof(ts[0].id)
        body = json.loads(base64.b64decode(rec.envelope.payload))
        i = [s["name"] for s in body["subject"]].index("task-output/" + ts[0].id)
        body["subject"][i]["digest"]["sha256"] = "0" * 64
        bad = to_json(rec.envelope)
        bad["payload"] = base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        with pytest.raises(ProofError, match="does not verify"):
            c.verify_proof(ts[0].id, from_json_record(rec, bad))
        go = greyctl_verify(greyctl, greyd, tenant, ts[0].id, bad, None, tmp_path)
        assert go.returncode != 0, go.stdout
        # a forged signature by another key fails both
        k = proof.SigningKey.generate()
        forged = proof.sign(k, tenant, "evil", [_forged_run(ts[0].id)])
        with pytest.raises(ProofError, match="unknown key id"):
            proof.verify(forged, proof.key_ring(keys))
        go = greyctl_verify(greyctl, greyd, tenant, ts[0].id, forged, None, tmp_path)
        assert go.returncode != 0, go.stdout
        # the same forged envelope with its own key: signature fine, digests wrong in both
        with pytest.raises(ProofError, match="digest differs"):
            proof.verify(forged, proof.key_ring([k.public]), task_id=ts[0].id,
                         output_digest=proof.output_digest(c.get(ts[0].id)))  # fmt: skip
        go = greyctl_verify(
            greyctl, greyd, tenant, ts[0].id, forged, base64.b64encode(k.public_raw()).decode(), tmp_path
        )
        assert go.returncode != 0 and "digest" in (go.stdout + go.stderr), go.stdout


def _forged_run(task_id: str) -> proof.Run:
    r = _runs(1)[0]
    r.task_id = task_id
    return r


def from_json_record(rec: Any, env: dict[str, Any]) -> Any:
    rec.envelope = from_json(Envelope, env)
    return rec


def test_python_signed_proofs_verify_in_go(greyd: Greyd, greyctl: str, tenant: str, tmp_path: Path) -> None:
    """A Python worker with a key: greyd and greyctl verify its proofs, and so does Python."""
    with Client(greyd.url, tenant=tenant) as c:
        w = Worker(c, concurrency=4, key_file=tmp_path / "py.key", worker_id="proof-" + tenant)

        @w.task("pyecho")
        def echo(job: Job) -> Any:
            return job.payload

        th = threading.Thread(target=w.run, kwargs={"install_signal_handlers": False})
        th.start()
        try:
            payloads: list[Any] = [{"b": 1, "a": [1.0, "ü"]}, None, 7, {"big": "x" * 100}]
            specs = [Spec(kind="pyecho", payload=p) if p is not None else Spec(kind="pyecho") for p in payloads]
            ts = c.submit_batch(specs)
            for t in ts:
                assert c.wait(t.id, timeout=30).status == "completed"
        finally:
            w.stop()
            th.join(30)
        assert w.key is not None
        assert any(k.key_id == w.key.key_id and k.node_id == w.node_id for k in c.node_keys())
        for t in ts:
            rec = c.proof(t.id)
            assert rec.verified, rec.problem  # greyd's Go check
            assert rec.node_id == w.node_id
            st = c.verify_proof(t.id, rec)
            ex = st.find(t.id)
            assert ex is not None and ex[0].executor["name"].startswith("grey-python-worker")
            go = greyctl_verify(greyctl, greyd, tenant, t.id, None, None, tmp_path)
            assert go.returncode == 0, go.stdout + go.stderr


def test_large_payload_and_result_by_reference(greyd: Greyd, greyctl: str, tenant: str, tmp_path: Path) -> None:
    """A payload over the client's inline limit goes by upload; a result over the server's goes by
    reference; the Python worker's proof names both objects and every verifier accepts it."""
    with Client(greyd.url, tenant=tenant, inline_limit=1000) as c:
        w = Worker(c, concurrency=2, key_file=tmp_path / "big.key", worker_id="big-" + tenant)

        @w.task("pyecho")
        def big(job: Job) -> Any:
            return {"n": len(job.payload["blob"]), "out": "y" * (1 << 20) + "é"}

        th = threading.Thread(target=w.run, kwargs={"install_signal_handlers": False})
        th.start()
        try:
            t = c.submit(Spec(kind="pyecho", payload={"blob": "x" * 5000}))
            assert t.payload_ref and t.payload_object is not None and t.payload is None
            done = c.wait(t.id, timeout=60)
        finally:
            w.stop()
            th.join(30)
        assert done.status == "completed", done.error
        assert done.result_ref is not None and done.result_ref.ref == "results/" + t.id
        assert isinstance(done.result, dict) and done.result["n"] == 5000 and done.result["out"].endswith("é")
        assert c.get(t.id).result == done.result
        rec = c.proof(t.id)
        assert rec.verified, rec.problem
        st = c.verify_proof(t.id, rec)
        found = st.find(t.id)
        assert found is not None
        roles = {o["role"]: o for o in found[0].objects or []}
        assert set(roles) == {"payload", "result"}
        assert roles["result"]["digest"]["sha256"] == done.result_ref.sha256
        go = subprocess.run(
            [greyctl, "--server", greyd.url, "--tenant", tenant, "proof", "verify", t.id, "--fetch"],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("GREY_")},
        )  # fmt: skip
        assert go.returncode == 0, go.stdout + go.stderr
