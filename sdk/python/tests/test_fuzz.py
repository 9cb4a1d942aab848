"""Randomised checks of the parsers of outside input (seeded, so a failure repeats).

Each parser gets random and mutated input and may only answer or raise its
documented error; the canonical form is checked for round trip, idempotence
and agreement with Go's proof.Canonicalize on random values.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import random
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from grey_client import errors, models, proof
from grey_client.models import Envelope

N = int(os.environ.get("GREY_PYSDK_FUZZ_N", "3000"))


def rand_text(r: random.Random, n: int) -> str:
    alphabet = string.printable + "éü€😀\u2028\ufb33\x00\x1f\x7f"
    return "".join(r.choice(alphabet) for _ in range(r.randrange(n)))


def rand_value(r: random.Random, depth: int = 0) -> Any:
    k = r.randrange(8 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        return r.choice([0, -1, 1, 2**53, 2**53 + 1, -(2**60), r.randrange(-(10**9), 10**9)])
    if k == 3:
        x = r.choice([r.uniform(-1e6, 1e6), r.random() * 10 ** r.randrange(-30, 30), 5e-324, 1e21, 1e-7, 0.1])
        return -x if r.random() < 0.3 else x
    if k == 4:
        return rand_text(r, 12)
    if k == 5:
        return [rand_value(r, depth + 1) for _ in range(r.randrange(4))]
    return {rand_text(r, 6): rand_value(r, depth + 1) for _ in range(r.randrange(4))}


def test_canonical_form_round_trips() -> None:
    r = random.Random(1)
    for _ in range(N):
        v = rand_value(r)
        c = proof.canonicalize(v)
        back = json.loads(c)
        assert proof.canonicalize(back) == c  # idempotent
        assert _same(back, v)


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, bool) or b is None or isinstance(b, str):
        return bool(a == b)
    if isinstance(b, int | float):
        return isinstance(a, int | float) and not isinstance(a, bool) and float(a) == float(b)
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return isinstance(a, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in b)


def test_canonical_form_agrees_with_go_on_random_values(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    r = random.Random(2)
    values = [rand_value(r) for _ in range(500)]
    prog = tmp_path / "main.go"
    prog.write_text(
        "package main\n"
        'import ("bufio"; "fmt"; "os"; "github.com/grey-distributed/grey/proof")\n'
        "func main() { s := bufio.NewScanner(os.Stdin); s.Buffer(nil, 1<<20)\n"
        "  for s.Scan() { b, err := proof.Canonicalize(s.Bytes())\n"
        '    if err != nil { fmt.Println("ERR", err); continue }; fmt.Println(string(b)) } }\n'
    )
    inp = "\n".join(json.dumps(v) for v in values) + "\n"
    out = subprocess.run(
        ["go", "run", str(prog)], cwd=REPO, input=inp, capture_output=True, text=True, check=True, timeout=300
    ).stdout.split("\n")[:-1]
    assert len(out) == len(values)
    for v, go in zip(values, out, strict=True):
        assert go == proof.canonicalize(v).decode(), f"value {json.dumps(v)}"


def test_non_json_values_refused() -> None:
    for bad in (math.nan, math.inf, object(), {1: 2}):
        with pytest.raises((ValueError, TypeError, AttributeError)):
            proof.canonicalize(bad)


def test_error_bodies() -> None:
    r = random.Random(3)
    good = json.dumps({"code": "not_found", "message": "m", "field": "f", "reason": "x"}).encode()
    for _ in range(N):
        body = bytes(r.randrange(256) for _ in range(r.randrange(40)))
        if r.random() < 0.5:
            b = bytearray(good)
            for _ in range(r.randrange(1, 4)):
                b[r.randrange(len(b))] = r.randrange(256)
            body = bytes(b)
        status = r.choice([400, 404, 409, 429, 500, 502, 503, 418])
        e = errors.error_from_body(status, body, r.choice([None, "1", "x", "Wed, 21 Oct 2015 07:28:00 GMT"]))
        assert isinstance(e, errors.GreyError) and isinstance(e.code, str) and e.code
        assert e.retry_after >= 0
        str(e)


def test_times_and_durations() -> None:
    r = random.Random(4)
    chars = "0123456789-:.TZz+smhun µ"
    for _ in range(N):
        s = "".join(r.choice(chars) for _ in range(r.randrange(30)))
        for parse in (models.parse_time, models.parse_duration):
            with contextlib.suppress(ValueError):
                parse(s)
    for _ in range(N):
        secs = r.uniform(-1e5, 1e5)
        assert models.parse_duration(models.format_duration(secs)) == pytest.approx(round(secs * 1000) / 1000)


def test_envelopes_and_statements() -> None:
    r = random.Random(5)
    k = proof.SigningKey.generate()
    ring = proof.key_ring([k.public])
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    run = proof.Run("t", "echo", b"1", b"2", 1, {"name": "n", "version": "v", "digest": "d"}, now, now)
    env = proof.sign(k, "acme", "n", [run])
    body = bytearray(base64.b64decode(env["payload"]))
    for _ in range(N // 3):
        b = bytearray(body)
        for _ in range(r.randrange(1, 4)):
            b[r.randrange(len(b))] = r.randrange(256)
        mutated = dict(env, payload=base64.b64encode(bytes(b)).decode())
        if bytes(b) != bytes(body):
            with pytest.raises(proof.ProofError):
                proof.verify(mutated, ring)
        with contextlib.suppress(proof.ProofError):
            proof.decode_statement(models.from_json(Envelope, mutated))
        st = json.loads(body)
        _replace_random_node(r, st)
        structural = dict(env, payload=base64.b64encode(json.dumps(st).encode()).decode())
        with contextlib.suppress(proof.ProofError):
            proof.decode_statement(models.from_json(Envelope, structural))
        junk = "".join(r.choice(string.printable) for _ in range(r.randrange(30)))
        for e in (dict(env, payload=junk), dict(env, signatures=[{"keyid": junk, "sig": junk}])):
            with pytest.raises(proof.ProofError):
                proof.verify(e, ring)


def _replace_random_node(r: random.Random, v: Any) -> None:
    """Replace one member somewhere in v (a dict or list) by a random value."""
    while True:
        keys = list(v.keys()) if isinstance(v, dict) else list(range(len(v)))
        if not keys:
            return
        k = r.choice(keys)
        child = v[k]
        if isinstance(child, dict | list) and child and r.random() < 0.7:
            v = child
            continue
        v[k] = rand_value(r)
        return
