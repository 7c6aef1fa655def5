"""The permission matrix: every operation of the OpenAPI document, called as
the owner, as members with no permission, with each one alone and with all of
them, as another contract's owner and anonymously. Real database and broker.

What a member needs is written here independently of the dependency layer's
table (``gateway.api.deps.MEMBER_RULES``). Operations this table does not
name (routes other teams add) are still held to what holds everywhere:
anonymous is 401, a member with no permission is 403, another contract never
gets a 2xx on this contract's objects, the owner is never 401/403."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.test_people import invite, member_login

API = "/api/v1"
PERMISSIONS = ("cameras", "arm", "intercom", "gates")
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/password-reset/confirm"),
    ("POST", "/api/v1/dispatch/login"),
    # A guest pass's link: its token is in the path (an unknown one is 404).
    ("GET", "/api/v1/guest/{token}"),
    ("POST", "/api/v1/guest/{token}/devices/{device_id}/open"),
}
FULL = set(PERMISSIONS)
NEEDS: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/me"): "any",
    ("GET", "/devices"): "any",
    ("POST", "/me/password"): "any",
    ("GET", "/devices/{device_id}"): {"cameras"},  # the matrix's device is a camera
    ("GET", "/events"): "any",  # each member sees the homes they hold a permission in
    ("GET", "/alerts"): "any",  # each member sees the homes they hold a permission in
    ("GET", "/calls"): "any",  # each member sees the homes they hold a permission in
    ("GET", "/me/notifications"): "owner",
    ("PUT", "/me/notifications"): "owner",
    ("GET", "/members"): "owner",
    ("POST", "/members"): "owner",
    ("GET", "/members/{member_id}"): "owner",
    ("PATCH", "/members/{member_id}"): "owner",
    ("DELETE", "/members/{member_id}"): "owner",
    ("GET", "/audit"): "owner",
    ("GET", "/homes/{home_id}/security"): {"arm"},
    ("POST", "/homes/{home_id}/security/arm"): {"arm"},
    ("POST", "/homes/{home_id}/security/disarm"): {"arm"},
    ("GET", "/homes/{home_id}/security/users"): "owner",
    ("POST", "/homes/{home_id}/security/users"): "owner",
    ("DELETE", "/homes/{home_id}/security/users/{user_id}"): "owner",
    ("GET", "/cameras/{device_id}/timeline"): {"cameras"},
    ("GET", "/cameras/{device_id}/playback"): {"cameras"},
    ("POST", "/cameras/{device_id}/exports"): {"cameras"},
    ("GET", "/exports/{job}"): FULL,  # it also takes a signed URL: contract-wide
    ("GET", "/cameras/{device_id}/recording.mp4"): FULL,  # bearer or signed URL: contract-wide
    ("GET", "/cameras/{device_id}/snapshot.jpg"): FULL,
    ("GET", "/exports/{job}/file"): FULL,
    ("OPTIONS", "/cameras/{device_id}/whep"): {"cameras"},
    ("POST", "/cameras/{device_id}/whep"): {"cameras"},
    ("DELETE", "/cameras/{device_id}/whep/{session_id}"): {"cameras"},
    ("GET", "/calls/{call_id}"): {"intercom"},
    ("GET", "/calls/{call_id}/clip.mp4"): {"intercom"},
    ("POST", "/calls/{call_id}/answer"): {"intercom"},
    ("POST", "/calls/{call_id}/decline"): {"intercom"},
    ("POST", "/calls/{call_id}/hangup"): {"intercom"},
    ("POST", "/homes/{home_id}/devices/{device_id}/commands"): {"gates"},  # a gate
    ("GET", "/homes/{home_id}/commands/{command_id}"): {"gates", "intercom"},
    ("GET", "/homes/{home_id}/commands"): {"gates", "intercom"},
    ("GET", "/passes"): "owner",
    ("POST", "/passes"): "owner",
    ("DELETE", "/passes/{pass_id}"): "owner",
}
"""(method, path under /api/v1) -> "any", "owner", or the permissions of which
a member needs one (``FULL``: all of them, in every home)."""

ROLES = (
    "owner",
    "member:none",
    *(f"member:{p}" for p in PERMISSIONS),
    "member:all",
    "other",
    "anonymous",
)


def operations(gw: Gateway) -> list[tuple[str, str]]:
    spec = gw.http.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith(API)
    )


def _fill(path: str, ids: dict[str, str]) -> str:
    opens = path.endswith(("/commands", "/open"))
    device = ids["gate"] if opens and "{device_id}" in path else ids["camera"]
    return (
        path.replace("{home_id}", ids["home"])
        .replace("{device_id}", device)
        .replace("{number}", "6201")
        .replace("{member_id}", "999999")
        .replace("{user_id}", "999999")
        .replace("{call_id}", "999999")
        .replace("{job}", "a" * 32)
        .replace("{session_id}", "a" * 32)
        .replace("{command_id}", "a" * 24)
        .replace("{building_id}", "999999")
        .replace("{login}", "nobody")
        .replace("{pass_id}", "999999")
        .replace("{case_id}", "999999")
        .replace("{token}", "x" * 43)
    )


def _expected(op: tuple[str, str], role: str) -> str:
    """ "ok" (not 401/403), "401", "403", or "?" (not held to a member rule)."""
    method, path = op
    if op in PUBLIC:
        return "ok"
    if role == "anonymous" or path.startswith((f"{API}/admin/", f"{API}/dispatch/")):
        return "401"
    if role in ("owner", "other"):
        return "ok"
    need = NEEDS.get((method, path.removeprefix(API)))
    has = set(PERMISSIONS) if role == "member:all" else {role.split(":")[1]} - {"none"}
    if need is None:
        return "?" if has else "403"
    if need == "any":
        return "ok"
    if need == "owner":
        return "403"
    assert isinstance(need, set)
    if need == FULL:
        return "ok" if has == FULL else "403"
    return "ok" if has & need else "403"


@pytest.fixture
def matrix(gateway: Gateway) -> dict[str, Any]:
    gw = gateway
    gw.create_contract("6201")
    gw.create_contract("6202")
    camera = gw.create_device("6201", "camera", "cam", rtsp_url="rtsp://127.0.0.1:1/x")
    gate = gw.create_device("6201", "gate", "gate")
    owner = gw.login("6201")
    home = camera["home"]
    headers: dict[str, dict[str, str]] = {
        "owner": owner,
        "other": gw.login("6202"),
        "anonymous": {},
    }
    for n, role in enumerate(r for r in ROLES if r.startswith("member:")):
        name = role.split(":")[1]
        granted = {"none": [], "all": list(PERMISSIONS)}.get(name, [name])
        login = f"+7913000020{n}"
        invite(gw, owner, login, {home: granted} if granted else {})
        headers[role] = member_login(gw, login)
    return {"headers": headers, "ids": {"home": home, "camera": camera["id"], "gate": gate["id"]}}


def test_every_operation_as_every_role(gateway: Gateway, matrix: dict[str, Any]) -> None:
    ops = operations(gateway)
    results: Counter[str] = Counter()
    wrong = []
    for op in ops:
        method, path = op
        url = _fill(path, matrix["ids"])
        for role in ROLES:
            body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
            r = gateway.http.request(method, url, json=body, headers=matrix["headers"][role])
            expected = _expected(op, role)
            got = r.status_code
            ok = {
                "ok": got not in (401, 403) and got < 500,
                "401": got == 401,
                "403": got == 403,
                "?": got in (403, 404, 405, 409, 415, 422, 503) or got < 300,
            }[expected]
            if role == "other" and any(p in path for p in ("{home_id}", "{device_id}")):
                # This contract's objects are never theirs.
                ok = ok and not 200 <= got < 300
            results["pass" if ok else "fail"] += 1
            if not ok:
                wrong.append(
                    f"{method} {path} as {role}: {got} (expected {expected}) {r.text[:120]}"
                )
    total = sum(results.values())
    print(f"\npermission matrix: {len(ops)} operations x {len(ROLES)} roles = {total}: {results}")
    assert not wrong, "\n".join(wrong)
    assert len(ops) >= 60
