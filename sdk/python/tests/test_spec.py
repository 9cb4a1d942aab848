"""The models against api/openapi.yaml: every model has exactly its schema's properties."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from conftest import REPO

from grey_client import errors, models

SPEC_PATH = REPO / "api" / "openapi.yaml"

# Model → where its schema is in the spec (a schema name, or a name and a path
# into it for an inline object such as the items of a list).
MODELS: dict[type, tuple[str, ...]] = {
    models.TaskError: ("TaskError",),
    models.Attempt: ("Attempt",),
    models.Lease: ("Lease",),
    models.DataRef: ("DataRef",),
    models.TaskUsage: ("TaskUsage",),
    models.Constraints: ("Constraints",),
    models.RetryPolicy: ("RetryPolicy",),
    models.Spec: ("Spec",),
    models.Task: ("Task",),
    models.TaskPage: ("TaskList",),
    models.Envelope: ("Envelope",),
    models.Signature: ("Envelope", "properties", "signatures", "items"),
    models.ProofShort: ("ProofShort",),
    models.ProofRecord: ("ProofRecord",),
    models.Replay: ("Replay",),
    models.NodeKey: ("NodeKeyList", "properties", "keys", "items"),
    models.Assignment: ("Assignment",),
    models.LeaseResponse: ("LeaseResponse",),
    models.LostLease: ("LostLease",),
    models.HeartbeatResponse: ("HeartbeatResponse",),
    models.ReportResult: ("ReportResult",),
    models.CompleteResponse: ("CompleteResponse",),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with open(SPEC_PATH, encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        node = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return node


def properties(spec: dict[str, Any], node: dict[str, Any]) -> set[str]:
    """The property names of an object schema, through $ref and allOf."""
    node = resolve(spec, node)
    props = set(node.get("properties", {}))
    for part in node.get("allOf", []):
        part = resolve(spec, part)
        if part.get("type") == "object" or "properties" in part or "allOf" in part:
            props |= properties(spec, part)
    return props


def schema_at(spec: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: dict[str, Any] = spec["components"]["schemas"][path[0]]
    for p in path[1:]:
        node = resolve(spec, node)[p]
    return node


def model_names(cls: type) -> set[str]:
    return {models.json_name(f) for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", list(MODELS), ids=lambda c: c.__name__)
def test_model_matches_schema(spec: dict[str, Any], cls: type) -> None:
    want = properties(spec, schema_at(spec, MODELS[cls]))
    got = model_names(cls)
    assert want, f"schema {MODELS[cls]} has no properties"
    missing, extra = want - got, got - want
    assert not missing, f"{cls.__name__} lacks properties of {'/'.join(MODELS[cls])}: {sorted(missing)}"
    assert not extra, f"{cls.__name__} has properties {'/'.join(MODELS[cls])} lacks: {sorted(extra)}"


def test_every_task_schema_in_use_is_covered(spec: dict[str, Any]) -> None:
    """The schemas the SDK's routes answer with all have a model (a new one must get one)."""
    covered = {p[0] for p in MODELS.values()}
    for name in ("Task", "TaskList", "ProofRecord", "Replay", "NodeKeyList", "LeaseResponse",
                 "HeartbeatResponse", "CompleteResponse", "BatchSubmitResponse"):  # fmt: skip
        if name == "BatchSubmitResponse":
            # {"tasks": [Task]}: decoded as a list of Task.
            assert properties(spec, spec["components"]["schemas"][name]) == {"tasks"}
            continue
        assert name in covered, f"no model for schema {name}"


def test_error_attributes_match_error_schema(spec: dict[str, Any]) -> None:
    want = properties(spec, spec["components"]["schemas"]["Error"])
    e = errors.NotFound("x")
    for p in want:
        assert hasattr(e, p), f"GreyError lacks the Error property {p}"


def test_error_classes_cover_every_code(spec: dict[str, Any]) -> None:
    for code in spec["components"]["schemas"]["ErrorCode"]["enum"]:
        cls = errors.error_class(code)
        assert cls.code == code, f"no exception class for code {code}"


def test_checker_catches_drift(spec: dict[str, Any]) -> None:
    """The check fails on a model with a missing or an extra property."""

    @dataclasses.dataclass
    class Short:
        message: str = ""

    @dataclasses.dataclass
    class Long:
        message: str = ""
        retryable: bool = False
        code: str = ""
        bogus: int = 0

    want = properties(spec, spec["components"]["schemas"]["TaskError"])
    assert want - model_names(Short) == {"retryable", "code"}
    assert model_names(Long) - want == {"bogus"}


def test_decode_task_fields() -> None:
    t = models.from_json(
        models.Task,
        {
            "id": "x",
            "status": "completed",
            "created_at": "2026-03-01T12:00:00.123456789Z",
            "attempts": [{"n": 1, "worker_id": "w", "leased_at": "2026-03-01T12:00:00+02:00"}],
            "usage": {"exec_seconds": 1, "cpu_seconds": 0.5, "bytes_in": 3, "bytes_out": 4},
            "new_server_field": True,
        },
    )
    assert t.terminal
    assert t.created_at is not None and t.created_at.microsecond == 123456
    assert t.attempts is not None and t.attempts[0].leased_at is not None
    assert t.attempts[0].leased_at.utcoffset() is not None
    assert t.usage is not None and isinstance(t.usage.exec_seconds, float)


@pytest.mark.parametrize(
    ("text", "secs"),
    [("0s", 0.0), ("1.5s", 1.5), ("100ms", 0.1), ("1m30s", 90.0), ("2h45m", 9900.0), ("-1s", -1.0), ("1µs", 1e-6)],
)
def test_parse_duration(text: str, secs: float) -> None:
    assert models.parse_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("bad", ["1", "s", "1x", "1.5", "--1s"])
def test_parse_duration_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        models.parse_duration(bad)


@pytest.mark.parametrize("bad", ["2026-03-01", "2026-03-01T12:00:00", "yesterday", "2026-03-01T12:00:00.Z"])
def test_parse_time_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        models.parse_time(bad)
