"""API-key authentication: an operator key submits, a worker key runs tasks (and registers its proof key)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Greyd, start_greyd

from grey_client import Client, Job, PermissionDenied, Spec, Unauthenticated, Worker

ADMIN = "admin-token-for-the-python-sdk-tests"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Greyd]:
    g = start_greyd(
        tmp_path_factory.mktemp("greyd-apikey"),
        f"auth:\n  mode: [apikey]\nhttp:\n  admin_token: {ADMIN}\n",
        admin_token=ADMIN,
    )
    yield g
    g.stop()


def new_key(g: Greyd, tenant: str, role: str, kinds: list[str] | None = None) -> str:
    with Client(g.url, token=ADMIN) as admin:
        body: dict[str, Any] = {"tenant": tenant, "role": role}
        if kinds:
            body["kinds"] = kinds
        created = admin.request("POST", "/api/v1/apikeys", json=body)
        token: str = created["token"]
        return token


def test_api_keys(secured: Greyd, tmp_path: Path) -> None:
    tenant = "acme"
    op = Client(secured.url, api_key=new_key(secured, tenant, "operator"))
    viewer = Client(secured.url, api_key=new_key(secured, tenant, "viewer"))
    wkey = new_key(secured, tenant, "worker", ["pyecho"])

    with pytest.raises(Unauthenticated):
        Client(secured.url, tenant=tenant).submit(Spec(kind="noop"))
    with pytest.raises(PermissionDenied) as pd:
        viewer.submit(Spec(kind="noop"))
    assert pd.value.reason == "role_not_allowed"
    with pytest.raises(PermissionDenied) as other:
        Client(secured.url, api_key=wkey, tenant="someone-else").submit(Spec(kind="noop"))
    assert other.value.reason in ("tenant_not_allowed", "role_not_allowed")

    w = Worker(Client(secured.url, api_key=wkey), key_file=tmp_path / "w.key", worker_id="keyed-worker")

    @w.task("pyecho")
    def echo(job: Job) -> Any:
        return {"echo": job.payload, "principal": job.principal}

    th = threading.Thread(target=w.run, kwargs={"install_signal_handlers": False})
    th.start()
    try:
        t = op.submit(Spec(kind="pyecho", payload={"x": 1}))
        done = op.wait(t.id, timeout=30)
    finally:
        w.stop()
        th.join(30)
    assert done.status == "completed" and done.tenant_id == tenant
    assert isinstance(done.result, dict) and done.result["echo"] == {"x": 1}
    assert done.result["principal"].startswith("apikey:")
    assert viewer.get(t.id).id == t.id
    rec = viewer.proof(t.id)
    assert rec.verified, rec.problem
    st = viewer.verify_proof(t.id, rec)
    found = st.find(t.id)
    assert found is not None and found[0].leased_by == done.result["principal"]
