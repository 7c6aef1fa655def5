"""What faces the outside gets hostile input: never a 5xx, always a ``detail``,
and nothing stored unless the request was valid."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from sqlalchemy import func, select

from gateway.api.signed import sign
from gateway.db.models import Contract, Device
from tests.conftest import Gateway


@schemathesis.serializer("application/sdp")
def _sdp(_ctx: Any, value: Any) -> bytes:
    """WHEP offers are SDP text; hostile ones are whatever the strategy made."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else str(value).encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
contract_like = st.fixed_dictionaries(
    {},
    optional={
        "number": st.text(max_size=40) | json_values,
        "password": st.text(max_size=300) | json_values,
        "address": st.text(max_size=600) | json_values,
        "extra": json_values,
    },
)
fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _rows(gw: Gateway, model: Any) -> int:
    with gw.ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@fuzz
@given(body=contract_like | json_values)
def test_contract_creation_never_fails_badly(gateway: Gateway, body: Any) -> None:
    before = _rows(gateway, Contract)
    r = gateway.http.post("/api/v1/admin/contracts", json=body, headers=gateway.admin)
    assert r.status_code in (201, 409, 422), r.text
    assert r.status_code == 201 or r.json()["detail"]
    assert _rows(gateway, Contract) == before + (r.status_code == 201)


@fuzz
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "kind": st.text(max_size=20) | json_values,
            "name": st.text(max_size=80) | json_values,
            "rtsp_url": st.text(max_size=50) | json_values,
        },
    )
    | json_values
)
def test_device_creation_never_fails_badly(gateway: Gateway, body: Any) -> None:
    if _rows(gateway, Contract) == 0:
        gateway.create_contract("9001")
    before = _rows(gateway, Device)
    r = gateway.http.post("/api/v1/admin/contracts/9001/devices", json=body, headers=gateway.admin)
    assert r.status_code in (201, 409, 422), r.text
    assert _rows(gateway, Device) == before + (r.status_code == 201)


@fuzz
@given(contract=st.text(max_size=100), password=st.text(max_size=300))
def test_login_never_fails_badly(gateway: Gateway, contract: str, password: str) -> None:
    r = gateway.http.post("/api/v1/auth/login", json={"contract": contract, "password": password})
    assert r.status_code in (401, 422, 429), r.text
    assert r.json()["detail"]


def test_api_conforms_to_its_openapi(gateway: Gateway) -> None:
    """Every documented operation, generated from /openapi.json, with and without
    the admin token: no 5xx, and responses match the documented schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", gateway.http.app)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) >= 10
    for operation in operations:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=gateway.admin)
            case.call_and_validate()

        check()


SIGNED_ROUTES = (
    "/api/v1/exports/x/file",
    "/api/v1/cameras/abc/recording.mp4",
    "/api/v1/cameras/abc/snapshot.jpg",
)
query_keys = st.sampled_from(["cid", "exp", "sig", "start", "end", "at", "access_token", "x"])


@fuzz
@given(
    route=st.sampled_from(SIGNED_ROUTES),
    params=st.lists(st.tuples(query_keys, st.text(max_size=24)), max_size=6),
)
@example(route=SIGNED_ROUTES[0], params=[("cid", "1"), ("exp", "²"), ("sig", "x")])
@example(route=SIGNED_ROUTES[0], params=[("cid", "1"), ("exp", "9" * 5000), ("sig", "x")])
@example(route=SIGNED_ROUTES[1], params=[("cid", "1"), ("exp", "99999999999"), ("sig", "é")])
def test_signed_media_queries_never_fail_badly(
    gateway: Gateway, route: str, params: list[tuple[str, str]]
) -> None:
    """Whatever a stranger puts in the query of a media URL: a 4xx with a ``detail``."""
    r = gateway.http.get(route, params=params)
    assert r.status_code in (401, 404, 422), r.text
    assert r.json()["detail"]


@fuzz
@given(
    route=st.sampled_from(SIGNED_ROUTES),
    params=st.dictionaries(st.sampled_from(["start", "end", "at", "x"]), st.text(max_size=32)),
)
def test_validly_signed_media_queries_never_fail_badly(
    gateway: Gateway, route: str, params: dict[str, str]
) -> None:
    """A signature of our own over hostile values (what reaches the code past the signature)."""
    if _rows(gateway, Contract) == 0:
        gateway.create_contract("9002")
    with gateway.ctx.db.session() as s:
        cid = s.scalars(select(Contract.id).where(Contract.number == "9002")).one()
    r = gateway.http.get(sign(gateway.ctx.secrets.secret_key, route, params, cid))
    assert r.status_code in (404, 422), r.text
    assert r.json()["detail"]
