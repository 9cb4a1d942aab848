"""The sync and asyncio clients against a real greyd."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from conftest import Greyd

from grey_client import (
    AlreadyExists,
    AsyncClient,
    Client,
    FailedPrecondition,
    FileToken,
    InvalidArgument,
    NotFound,
    Spec,
    Unavailable,
    WaitTimeout,
    errors,
)
from grey_client.models import Constraints, RetryPolicy


def test_submit_get_wait(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        t = c.submit(Spec(kind="echo", payload={"msg": "hello", "n": 1}))
        assert t.tenant_id == tenant and t.kind == "echo" and t.id
        done = c.wait(t.id, timeout=30)
        assert done.status == "completed"
        assert done.result == {"msg": "hello", "n": 1}
        got = c.get(t.id)
        assert got.id == t.id and got.finished_at is not None
        # keyword form
        t2 = c.submit(kind="noop")
        assert c.wait(t2.id, timeout=30).status == "completed"


def test_failed_task_carries_error(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        t = c.submit(
            Spec(kind="fail", payload={"message": "boom", "retryable": False}, retry=RetryPolicy(max_retries=0))
        )
        done = c.wait(t.id, timeout=30)
        assert done.status == "failed"
        assert done.error is not None and done.error.message


def test_batch_submit_and_field_errors(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        ts = c.submit_batch([Spec(kind="noop"), {"kind": "echo", "payload": [1, 2]}])
        assert [t.kind for t in ts] == ["noop", "echo"]
        with pytest.raises(InvalidArgument) as ei:
            c.submit_batch([Spec(kind="noop"), Spec(kind="noop", priority=99)])
        assert ei.value.field == "tasks[1].priority"
        assert ei.value.status == 400 and ei.value.code == "invalid_argument"


def test_typed_errors(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        with pytest.raises(NotFound) as nf:
            c.get("0195a3b4-0000-7000-8000-000000000001")
        assert nf.value.status == 404
        with pytest.raises(InvalidArgument) as bad:
            c.submit(Spec(kind="Bad Kind!"))
        assert bad.value.field == "kind"
        with pytest.raises(InvalidArgument):
            c.get("")  # refused before any request
        # idempotency key reused with another spec
        c.submit(Spec(kind="noop", idempotency_key="k1"))
        again = c.submit(Spec(kind="noop", idempotency_key="k1"))
        assert again.idempotency_key == "k1"
        with pytest.raises(AlreadyExists) as ae:
            c.submit(Spec(kind="echo", idempotency_key="k1"))
        assert ae.value.reason == "idempotency_key_reused"
        # unknown field: strict JSON, the field named
        with pytest.raises(InvalidArgument) as uf:
            c.submit({"kind": "noop", "bogus": 1})
        assert uf.value.field == "bogus"


def test_large_payload_goes_by_upload(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant, inline_limit=100) as c:
        ts = c.submit_batch([Spec(kind="echo", payload={"x": "z" * 500}), Spec(kind="echo", payload=1)])
        assert ts[0].payload_ref and ts[0].payload_object is not None and ts[1].payload_ref is None
        assert [c.wait(t.id, timeout=30).result for t in ts] == [{"x": "z" * 500}, 1]
        assert c.result(ts[1].id) == b"1"
    with Client(greyd.url, tenant=tenant, inline_limit=0) as never, pytest.raises(errors.TooLarge):
        never.submit(Spec(kind="echo", payload="z" * (2 << 20)))


def test_cancel(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        t = c.submit(Spec(kind="pyslow"))  # no worker serves it: stays pending
        cancelled = c.cancel(t.id)
        assert cancelled.status == "cancelled"
        with pytest.raises(FailedPrecondition):
            c.cancel(t.id)


def test_wait_timeout_returns_last_seen(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        t = c.submit(Spec(kind="pyslow"))
        began = time.monotonic()
        with pytest.raises(WaitTimeout) as wt:
            c.wait(t.id, timeout=1.0)
        assert time.monotonic() - began < 5
        assert isinstance(wt.value, errors.DeadlineExceeded)
        assert wt.value.task is not None and wt.value.task.status == "pending"
        c.cancel(t.id)


def test_list_paging_and_filters(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        ids = [t.id for t in c.submit_batch([Spec(kind="echo", payload=i) for i in range(7)])]
        gpu = c.submit(Spec(kind="pyslow", constraints=Constraints(labels={"gpu": "true"})))
        for i in ids:
            c.wait(i, timeout=30)
        # cursor paging, newest first, no task twice
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = c.list(kind="echo", limit=3, cursor=cursor)
            pages += 1
            seen += [t.id for t in page.tasks]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert pages >= 3
        assert sorted(seen) == sorted(ids) and len(set(seen)) == len(seen)
        assert [t.id for t in c.list_all(kind="echo", limit=2)] == seen
        # status, label and finished-time filters
        assert {t.id for t in c.list_all(status=["completed"], kind="echo")} == set(ids)
        assert [t.id for t in c.list(labels={"gpu": "true"}).tasks] == [gpu.id]
        assert {t.id for t in c.list_all(finished_from=before, kind="echo")} == set(ids)
        assert list(c.list_all(finished_to=before, kind="echo")) == []
        assert [t.id for t in c.list(status="pending").tasks] == [gpu.id]
        with pytest.raises(InvalidArgument):
            c.list(status="nonsense")
        with pytest.raises(InvalidArgument):
            c.list(cursor="not-a-cursor")
        c.cancel(gpu.id)


def test_tenants_do_not_see_each_other(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as a, Client(greyd.url, tenant=tenant + "-other") as b:
        t = a.submit(Spec(kind="noop"))
        with pytest.raises(NotFound):
            b.get(t.id)
        assert all(x.id != t.id for x in b.list().tasks)


def test_replay(greyd: Greyd, tenant: str) -> None:
    with Client(greyd.url, tenant=tenant) as c:
        t = c.submit(Spec(kind="echo", payload={"b": 2, "a": [1.0, 1e2, "é"]}))
        c.wait(t.id, timeout=30)
        r = c.replay(t.id)
        assert r.match and r.task_id == t.id and r.stored_digest == r.replay_digest
        pending = c.submit(Spec(kind="pyslow"))
        with pytest.raises(FailedPrecondition):
            c.replay(pending.id)
        c.cancel(pending.id)


def test_failover_to_the_next_server(greyd: Greyd, tenant: str) -> None:
    # the first server refuses connections: the client fails over and sticks to the one that answered
    with Client(["http://127.0.0.1:1", greyd.url], tenant=tenant) as c:
        t = c.submit(Spec(kind="noop"))
        assert c.get(t.id).id == t.id
        assert c._core.preferred == 1
    with Client("http://127.0.0.1:1", tenant=tenant, timeout=2) as dead, pytest.raises(Unavailable):
        dead.get(t.id)


def test_bad_options() -> None:
    with pytest.raises(InvalidArgument):
        Client("")
    with pytest.raises(InvalidArgument):
        Client("ftp://x")
    with pytest.raises(InvalidArgument):
        Client("http://x", tenant="Not A Tenant")
    with pytest.raises(InvalidArgument) as ei:
        Client("http://x", api_key="grey_short_secret")
    assert "grey_short_secret" not in str(ei.value)  # a malformed key is never quoted
    with pytest.raises(InvalidArgument):
        Client("http://x", token="a\nb")
    with pytest.raises(InvalidArgument):
        Client("http://x", token="a", api_key="grey_" + "a" * 16 + "_" + "b" * 52)


def test_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(404, json={"code": "not_found", "message": "no such task"})

    key = "grey_" + "a" * 16 + "_" + "b" * 52
    c = Client(
        "http://grey.test", tenant="acme", api_key=key, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(NotFound):
        c.get("abc/def")
    r = seen[0]
    assert r.headers["Authorization"] == "Bearer " + key
    assert r.headers["X-Grey-Tenant"] == "acme"
    assert r.url.raw_path == b"/api/v1/tasks/abc%2Fdef"


def test_error_decoding_of_non_grey_bodies() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/429"):
            return httpx.Response(429, text="slow down", headers={"Retry-After": "7"})
        return httpx.Response(502, text="<html>bad gateway</html>")

    c = Client("http://grey.test", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(errors.ResourceExhausted) as ei:
        c.request("GET", "/429")
    assert ei.value.retry_after == 7 and ei.value.transient
    with pytest.raises(errors.Unknown) as ui:
        c.request("GET", "/x")
    assert "HTTP 502" in ui.value.message


def test_retry_after_forms() -> None:
    assert errors.parse_retry_after("3") == 3
    assert errors.parse_retry_after("") == 0
    assert errors.parse_retry_after("soon") == 0
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert 50 < errors.parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) <= 60


def test_wait_rides_out_unavailable() -> None:
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(
                503, json={"code": "unavailable", "message": "no leader"}, headers={"Retry-After": "0"}
            )
        return httpx.Response(200, json={"id": "t", "status": "completed", "result": 1})

    c = Client("http://grey.test", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert c.wait("t", timeout=10).result == 1
    assert calls["n"] == 3


def test_token_file_rotation(tmp_path: object) -> None:
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "tok"
    p.write_text("one\n")
    ft = FileToken(p)
    assert ft() == "one"
    time.sleep(0.01)
    p.write_text("second\n")
    assert ft() == "second"
    p.write_text("")
    with pytest.raises(errors.Unauthenticated):
        ft()


def test_async_client(greyd: Greyd, tenant: str) -> None:
    async def main() -> None:
        async with AsyncClient(greyd.url, tenant=tenant) as c:
            ts = await asyncio.gather(*(c.submit(Spec(kind="echo", payload=i)) for i in range(5)))
            done = await asyncio.gather(*(c.wait(t.id, timeout=30) for t in ts))
            assert sorted(d.result for d in done) == [0, 1, 2, 3, 4]
            batch = await c.submit_batch([Spec(kind="noop")] * 3)
            assert len(batch) == 3
            ids = [t.id async for t in c.list_all(kind="echo", limit=2)]
            assert sorted(ids) == sorted(t.id for t in ts)
            with pytest.raises(NotFound):
                await c.get("0195a3b4-0000-7000-8000-000000000001")
            p = await c.submit(Spec(kind="pyslow"))
            with pytest.raises(WaitTimeout):
                await c.wait(p.id, timeout=0.5)
            assert (await c.cancel(p.id)).status == "cancelled"
            r = await c.replay(ts[0].id)
            assert r.match
            st = await c.verify_proof(ts[0].id)
            assert st.tenant_id == tenant
        async with AsyncClient(greyd.url, tenant=tenant, inline_limit=100) as small:
            big = await small.submit(Spec(kind="echo", payload={"x": "z" * 500}))
            assert big.payload_ref and big.payload is None
            assert (await small.wait(big.id, timeout=30)).result == {"x": "z" * 500}

    asyncio.run(main())
