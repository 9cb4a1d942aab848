"""Execution proofs: RFC 8785 digests, DSSE envelopes, ed25519 keys.

The same rules as the Go package ``proof`` (docs/PROOFS.md): a proof is an
in-toto Statement v1 in a DSSE envelope, signed with a node's ed25519 key
over DSSE's pre-authentication encoding; a task's input and output digests
are SHA-256 over the RFC 8785 (JCS) form of its payload and result, or over
the object's bytes when the value is stored by reference.

:func:`verify` checks an envelope as ``proof.Verify`` does; :class:`SigningKey`
loads or creates a PKCS#8 PEM key file exactly like ``proof.LoadOrCreateKey``
and signs statements as ``proof.Signer`` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .models import Envelope, NodeKey, Signature, Task, format_time, to_json

__all__ = [
    "MAX_BATCH",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "SUBJECT_PREFIX",
    "Execution",
    "ProofError",
    "Run",
    "SigningKey",
    "Statement",
    "canonicalize",
    "decode_statement",
    "input_digest",
    "json_digest",
    "key_id",
    "key_ring",
    "output_digest",
    "pae",
    "sign",
    "verify",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://grey.dev/task-execution/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SUBJECT_PREFIX = "task-output/"
#: Most tasks one statement covers (proof.MaxBatch).
MAX_BATCH = 64


class ProofError(Exception):
    """A proof that does not verify; the message says what differs."""


# --- RFC 8785 ---------------------------------------------------------------


def _number(x: float) -> str:
    """ECMAScript Number.prototype.toString of a double (RFC 8785 §3.2.2.3)."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity have no JSON form")
    if x == 0:
        return "0"
    m, _, e = repr(abs(x)).partition("e")
    ip, _, fp = m.partition(".")
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    n = len(ip) + int(e or 0) - (len(ip + fp) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * -n + digits
    else:
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + f"{n - 1:+d}"
    return ("-" if x < 0 else "") + s


def _string(s: str) -> str:
    # json.dumps with ensure_ascii=False escapes exactly what RFC 8785 wants:
    # '"', '\\' and control characters (\b \f \n \r \t short forms, else \u00xx).
    return json.dumps(s, ensure_ascii=False)


def canonicalize(v: Any) -> bytes:
    """The RFC 8785 (JCS) form of a parsed JSON value, as ``proof.Canonicalize`` writes it.

    Integers are taken as IEEE doubles, as JCS does: two integers beyond 2**53
    that round to the same double share a form.
    """
    return _jcs(v).encode("utf-8")


def _jcs(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, int):
        return _number(float(v))
    if isinstance(v, float):
        return _number(v)
    if isinstance(v, Mapping):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_string(k) + ":" + _jcs(v[k]) for k in keys) + "}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_jcs(x) for x in v) + "]"
    raise TypeError(f"{type(v).__name__} is not a JSON value")


def json_digest(v: Any, *, absent: bool = False) -> str:
    """Hex SHA-256 of a JSON value's RFC 8785 form; an absent value (``absent=True``) digests as zero bytes."""
    return hashlib.sha256(b"" if absent else canonicalize(v)).hexdigest()


def _raw_json_digest(raw: bytes | None) -> str:
    """proof.JSONDigest of raw JSON bytes: empty bytes digest as zero bytes."""
    if not raw:
        return hashlib.sha256(b"").hexdigest()
    return hashlib.sha256(canonicalize(json.loads(raw))).hexdigest()


def input_digest(t: Task, *, has_payload: bool | None = None) -> str:
    """The input digest a proof of task ``t`` signs (``proof.InputDigest``).

    An absent payload digests as zero bytes; since the client cannot tell a
    JSON ``null`` payload from none, ``None`` counts as absent unless
    ``has_payload`` says otherwise.
    """
    if t.payload_object is not None:
        return t.payload_object.sha256
    absent = t.payload is None if has_payload is None else not has_payload
    return json_digest(t.payload, absent=absent)


def output_digest(t: Task, *, has_result: bool | None = None) -> str:
    """The output digest a proof of task ``t`` signs (``proof.OutputDigest``); see :func:`input_digest`."""
    if t.result_ref is not None:
        return t.result_ref.sha256
    absent = t.result is None if has_result is None else not has_result
    return json_digest(t.result, absent=absent)


# --- keys -------------------------------------------------------------------


def key_id(pub: Ed25519PublicKey) -> str:
    """The key id: hex of the first 16 bytes of SHA-256 over the key's PKIX DER (``proof.KeyIDOf``)."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:32]


def key_ring(keys: Iterable[NodeKey | Ed25519PublicKey | bytes]) -> dict[str, Ed25519PublicKey]:
    """A verifier's key ring by key id, from the cluster's keys, public keys, or raw 32-byte keys."""
    ring: dict[str, Ed25519PublicKey] = {}
    for k in keys:
        if isinstance(k, NodeKey):
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(k.public_key))
        elif isinstance(k, bytes):
            pub = Ed25519PublicKey.from_public_bytes(k)
        else:
            pub = k
        ring[key_id(pub)] = pub
    return ring


class SigningKey:
    """An ed25519 proof-signing key, stored like ``proof.LoadOrCreateKey``: PKCS#8 PEM, mode 0600."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (not stored)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Load the key at ``path``, or create it with mode 0600 when the file does not exist.

        A key file readable or writable by group or others is refused, as greyd refuses it.
        """
        p = os.fspath(path)
        try:
            return cls._load(p)
        except FileNotFoundError:
            pass
        k = cls.generate()
        pem = k.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        d = os.path.dirname(os.path.abspath(p))
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".grey-key-", dir=d)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, p)
            except FileExistsError:  # another process won the race
                return cls._load(p)
        finally:
            os.unlink(tmp)
        return k

    @classmethod
    def _load(cls, path: str) -> SigningKey:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"key file {path} is not a regular file")
        perm = stat.S_IMODE(st.st_mode)
        if perm & 0o077 and os.name != "nt":
            raise PermissionError(
                f"key file {path} has mode {perm:04o}: it is accessible by group or others; "
                f"refusing to use it (chmod 600 {path})"
            )
        with open(path, "rb") as f:
            data = f.read()
        if b"-----BEGIN PRIVATE KEY-----" not in data:
            raise ValueError(f'key file {path}: no PEM "PRIVATE KEY" block')
        priv = serialization.load_pem_private_key(data, password=None)
        if not isinstance(priv, Ed25519PrivateKey):
            raise ValueError(f"key file {path} holds a {type(priv).__name__}, want an ed25519 key")
        return cls(priv)

    def public_raw(self) -> bytes:
        """The raw 32-byte public key (what ``/api/v1/cluster/join`` registers)."""
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- statements ---------------------------------------------------------------


@dataclass
class Execution:
    """How one task's output was made (``predicate.executions[i]``)."""

    task_id: str
    kind: str
    input_digest: str
    executor: dict[str, str]
    attempt: int
    started_at: str
    finished_at: str
    leased_by: str | None = None
    objects: list[dict[str, Any]] | None = None


@dataclass
class Statement:
    """A decoded in-toto statement of a Grey proof."""

    tenant_id: str
    node_id: str
    platform: str
    subjects: list[tuple[str, str]]  # (name, sha256)
    executions: list[Execution]
    raw: dict[str, Any] = field(default_factory=dict)

    def find(self, task_id: str) -> tuple[Execution, str] | None:
        """The execution and output digest of ``task_id``, or ``None`` when the statement does not cover it."""
        for i, e in enumerate(self.executions):
            if e.task_id == task_id and i < len(self.subjects):
                return e, self.subjects[i][1]
        return None


@dataclass
class Run:
    """What to prove about one completed attempt (``proof.Run``).

    ``payload`` and ``output`` are the raw JSON bytes as leased and as
    reported (``b""`` when absent).
    """

    task_id: str
    kind: str
    payload: bytes
    output: bytes
    attempt: int
    executor: dict[str, str]
    started_at: datetime
    finished_at: datetime
    leased_by: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def _b64decode(s: str) -> bytes:
    # Go's decodeBase64 accepts standard and URL alphabets, padded or not.
    t = s.strip()
    t = t + "=" * (-len(t) % 4)
    alt = b"-_" if ("-" in t or "_" in t) else None
    return base64.b64decode(t, altchars=alt, validate=True)


def _is_hex_sha256(d: Any) -> bool:
    return isinstance(d, str) and len(d) == 64 and d == d.lower() and all(c in "0123456789abcdef" for c in d)


def decode_statement(env: Envelope) -> Statement:
    """The envelope's statement, checked as ``Statement.Validate`` checks it, WITHOUT checking the signature."""
    try:
        body = _b64decode(env.payload)
    except (binascii.Error, ValueError):
        raise ProofError("payload is not valid base64") from None
    return _statement(body)


def _statement(body: bytes) -> Statement:
    try:
        return _parse_statement(body)
    except ProofError:
        raise
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as e:
        # a member of the wrong JSON type (a list where an object belongs, ...)
        raise ProofError(f"invalid statement: malformed ({type(e).__name__}: {e})") from None


def _parse_statement(body: bytes) -> Statement:
    try:
        st = json.loads(body)
    except ValueError as err:
        raise ProofError(f"payload is not an in-toto statement: {err}") from None
    if not isinstance(st, dict):
        raise ProofError("payload is not an in-toto statement: not a JSON object")
    if st.get("_type") != STATEMENT_TYPE:
        raise ProofError(f"invalid statement: statement _type is {st.get('_type')!r}, want {STATEMENT_TYPE!r}")
    if st.get("predicateType") != PREDICATE_TYPE:
        raise ProofError(f"invalid statement: predicateType is {st.get('predicateType')!r}, want {PREDICATE_TYPE!r}")
    p = st.get("predicate") or {}
    execs = p.get("executions") or []
    subs = st.get("subject") or []
    if not execs:
        raise ProofError("invalid statement: predicate has no executions")
    if len(subs) != len(execs):
        raise ProofError(f"invalid statement: statement has {len(subs)} subjects for {len(execs)} executions")
    if not p.get("tenant_id"):
        raise ProofError("invalid statement: predicate has no tenant_id")
    if not p.get("platform"):
        raise ProofError("invalid statement: predicate has no platform")
    seen: set[str] = set()
    executions: list[Execution] = []
    subjects: list[tuple[str, str]] = []
    for i, e in enumerate(execs):
        tid = e.get("task_id") or ""
        if not tid:
            raise ProofError(f"invalid statement: execution {i} has no task_id")
        if tid in seen:
            raise ProofError(f"invalid statement: task {tid} appears twice")
        seen.add(tid)
        name = subs[i].get("name")
        if name != SUBJECT_PREFIX + tid:
            raise ProofError(f"invalid statement: subject {i} is named {name!r}, want {SUBJECT_PREFIX + tid!r}")
        out = (subs[i].get("digest") or {}).get("sha256")
        if not _is_hex_sha256(out):
            raise ProofError(f"invalid statement: task {tid} output digest {out!r} is not a lower-case hex SHA-256")
        if not _is_hex_sha256(e.get("input_digest")):
            raise ProofError(f"invalid statement: task {tid} input digest is not a lower-case hex SHA-256")
        for o in e.get("objects") or []:
            if not o.get("name") or o.get("role") not in ("payload", "result") or int(o.get("size", 0)) < 0:
                raise ProofError(f"invalid statement: task {tid} names a malformed object {o.get('name')!r}")
            if not _is_hex_sha256((o.get("digest") or {}).get("sha256")):
                raise ProofError(f"invalid statement: task {tid} object {o.get('name')} digest is malformed")
        subjects.append((str(name), str(out)))
        executions.append(
            Execution(
                task_id=tid,
                kind=e.get("kind", ""),
                input_digest=e["input_digest"],
                executor=dict(e.get("executor") or {}),
                attempt=int(e.get("attempt", 0)),
                started_at=e.get("started_at", ""),
                finished_at=e.get("finished_at", ""),
                leased_by=e.get("leased_by"),
                objects=e.get("objects"),
            )
        )
    return Statement(
        tenant_id=p["tenant_id"],
        node_id=p.get("node_id", ""),
        platform=p["platform"],
        subjects=subjects,
        executions=executions,
        raw=st,
    )


def _norm(d: str) -> str:
    d = d.strip().lower()
    return d.removeprefix("sha256:")


def verify(
    env: Envelope | Mapping[str, Any],
    ring: Mapping[str, Ed25519PublicKey],
    *,
    task_id: str = "",
    tenant_id: str = "",
    input_digest: str = "",
    output_digest: str = "",
) -> Statement:
    """Verify an envelope as ``proof.Verify`` does and return its statement.

    The signature must verify with a key of ``ring`` (by key id; a signature
    without one is tried against every key), the statement must be valid,
    and the given expectations must hold: empty ones are not checked; the
    digests are those of ``task_id``'s execution (without ``task_id``, only on
    a one-task statement). Raises :class:`ProofError` saying what differs.
    """
    if not isinstance(env, Envelope):
        from .models import from_json

        env = from_json(Envelope, dict(env))
    if env.payload_type != PAYLOAD_TYPE:
        raise ProofError(f"payload type is {env.payload_type!r}, want {PAYLOAD_TYPE!r}")
    try:
        body = _b64decode(env.payload)
    except (binascii.Error, ValueError):
        raise ProofError("payload was modified: it is not valid base64") from None
    _verify_signatures(env, body, ring)
    st = _statement(body)
    if tenant_id and st.tenant_id != tenant_id:
        raise ProofError(f"tenant id differs: envelope says {st.tenant_id!r}, expected {tenant_id!r}")
    if not (task_id or input_digest or output_digest):
        return st
    ex: Execution
    if task_id:
        found = st.find(task_id)
        if found is None:
            ids = [e.task_id for e in st.executions]
            raise ProofError(
                f"task id differs: the envelope covers {ids[:3]}{' and more' if len(ids) > 3 else ''}, not {task_id!r}"
            )
        ex, out = found
    elif len(st.executions) == 1:
        ex, out = st.executions[0], st.subjects[0][1]
    else:
        raise ProofError(f"the envelope covers {len(st.executions)} tasks: name the task whose digests to check")
    for what, got, want in (("output digest", out, output_digest), ("input digest", ex.input_digest, input_digest)):
        if want and got != _norm(want):
            raise ProofError(f"{what} differs: envelope says {got}, task has {_norm(want)}")
    return st


def _verify_signatures(env: Envelope, body: bytes, ring: Mapping[str, Ed25519PublicKey]) -> None:
    if not env.signatures:
        raise ProofError("envelope has no signatures")
    msg = pae(env.payload_type, body)
    errs: list[str] = []
    for s in env.signatures:
        try:
            sig = _b64decode(s.sig)
        except (binascii.Error, ValueError):
            sig = b""
        if len(sig) != 64:
            errs.append(f"signature by key {s.keyid!r} is malformed (not a base64 ed25519 signature)")
            continue
        candidates = list(ring.values()) if not s.keyid else [ring[s.keyid]] if s.keyid in ring else []
        if s.keyid and not candidates:
            errs.append(f"unknown key id {s.keyid!r}: not in the key ring ({len(ring)} keys)")
            continue
        for pub in candidates:
            try:
                pub.verify(sig, msg)
                return
            except InvalidSignature:
                pass
        errs.append(
            f"signature does not verify with key {s.keyid}: the payload was modified, "
            "or the signature was not made by that key"
            if s.keyid
            else "signature without key id does not verify with any key in the key ring"
        )
    raise ProofError("; ".join(errs))


def _run_digests(r: Run) -> tuple[str, str]:
    ind, out = _raw_json_digest(r.payload), _raw_json_digest(r.output)
    for o in r.objects:
        if o.get("role") == "payload":
            ind = o["digest"]["sha256"]
        elif o.get("role") == "result":
            out = hashlib.sha256(r.output).hexdigest()
    return ind, out


def statement_json(tenant_id: str, node_id: str, platform: str, runs: list[Run]) -> bytes:
    """The statement JSON of a batch of runs (``proof.NewStatement``), in the Go field order."""
    subjects = []
    executions = []
    for r in runs:
        ind, out = _run_digests(r)
        subjects.append({"name": SUBJECT_PREFIX + r.task_id, "digest": {"sha256": out}})
        e: dict[str, Any] = {
            "task_id": r.task_id,
            "kind": r.kind,
            "input_digest": ind,
            "executor": {
                "name": r.executor.get("name", ""),
                "version": r.executor.get("version", ""),
                "digest": r.executor.get("digest", ""),
            },
            "attempt": r.attempt,
            "started_at": format_time(r.started_at),
            "finished_at": format_time(r.finished_at),
        }
        if r.leased_by:
            e["leased_by"] = r.leased_by
        if r.objects:
            e["objects"] = r.objects
        executions.append(e)
    st = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "tenant_id": tenant_id,
            "node_id": node_id,
            "platform": platform or "software",
            "executions": executions,
        },
    }
    return json.dumps(st, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: SigningKey, tenant_id: str, node_id: str, runs: list[Run], platform: str = "software") -> dict[str, Any]:
    """Sign 1 to :data:`MAX_BATCH` runs of one tenant into one envelope (``proof.Signer.Sign``), as JSON."""
    if not 1 <= len(runs) <= MAX_BATCH:
        raise ValueError(f"a statement covers 1 to {MAX_BATCH} runs, got {len(runs)}")
    body = statement_json(tenant_id, node_id, platform, runs)
    _statement(body)  # the Go signer validates before signing
    sig = key.private.sign(pae(PAYLOAD_TYPE, body))
    env = Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=base64.b64encode(body).decode(),
        signatures=[Signature(keyid=key.key_id, sig=base64.b64encode(sig).decode())],
    )
    return to_json(env)
