"""Live (WebRTC) sessions end the moment their viewer's access does, on every
path that ends it: a member removed or given a new password, a password
changed or reset by the support desk, a contract suspended or terminated.

The token re-check is set to a minute, so only the revocation itself can end
a session in time. Revocations go through one app (the test client) while the
sessions live in another (the served one), as with two API processes: what
ends them there is the hub's ``access_ended`` notice (PostgreSQL NOTIFY, or
the broker on SQLite)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bench.live.client import WhepViewer
from tests.conftest import Gateway
from tests.netns import serve
from tests.rtsp import RtspServer, encode
from tests.support import free_port

API = "/api/v1"
PW = "member password 1"
OWNER_PW = "correct horse 1"
"""What tests.conftest.Gateway gives a contract it creates."""
RECHECK_S = 60.0
VIDEO = f"videotestsrc is-live=true pattern=ball ! {encode(320, 180, 15)}"


@pytest.fixture(scope="module")
def camera() -> Iterator[RtspServer]:
    with RtspServer(free_port(), {"/cam": f"( {VIDEO} )"}) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def log_in(gw: Gateway, login: str, password: str) -> str:
    r = gw.http.post(f"{API}/auth/login", json={"contract": login, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def ended_after(gw: Gateway, url: str, cam: str, token: str, revoke: Callable[[], None]) -> float:
    """Seconds from the revoking request to the viewer's session ending at the gateway."""
    live = gw.ctx.live
    assert live is not None

    async def main() -> float:
        async with httpx.AsyncClient(timeout=30) as http:
            viewer = WhepViewer(url, cam, token)
            await viewer.start(http)
            await viewer.wait_frames(2)
            assert viewer.session_url is not None
            session = viewer.session_url.rsplit("/", 1)[1]
            start = time.monotonic()
            await asyncio.to_thread(revoke)
            while live.is_open(session):
                if time.monotonic() - start > RECHECK_S / 4:
                    raise AssertionError("the session outlived its viewer's access")
                await asyncio.sleep(0.01)
            took = time.monotonic() - start
            await viewer.close()
            return took

    return asyncio.run(main())


def ok(response: httpx.Response, status: int = 200) -> None:
    assert response.status_code == status, response.text


def test_every_revocation_ends_live_sessions_at_once(
    gateway_factory: Callable[..., Gateway], camera: RtspServer
) -> None:
    gw = gateway_factory(stream_recheck_s=RECHECK_S, webrtc_host_addresses=["127.0.0.1"])
    http = gw.http
    gw.create_contract("7101")
    device = gw.create_device("7101", "camera", "hall", rtsp_url=camera.url("/cam"))
    cam: str = device["id"]
    home: str = device["home"]
    owner = gw.login("7101")

    def invite(login: str) -> dict[str, Any]:
        r = http.post(
            f"{API}/members",
            json={
                "login": login,
                "password": PW,
                "name": "Маша",
                "permissions": {home: ["cameras"]},
            },
            headers=owner,
        )
        ok(r, 201)
        body: dict[str, Any] = r.json()
        return body

    took: dict[str, float] = {}
    with serve(gw.ctx, "127.0.0.1", free_port()) as url:
        removed = invite("+79130000011")
        took["member removed"] = ended_after(
            gw,
            url,
            cam,
            log_in(gw, "+79130000011", PW),
            lambda: ok(http.delete(f"{API}/members/{removed['id']}", headers=owner), 204),
        )
        renamed = invite("+79130000012")
        took["member's password set by the owner"] = ended_after(
            gw,
            url,
            cam,
            log_in(gw, "+79130000012", PW),
            lambda: ok(
                http.patch(
                    f"{API}/members/{renamed['id']}", json={"password": "new one 2"}, headers=owner
                )
            ),
        )
        invite("+79130000013")
        member = log_in(gw, "+79130000013", PW)
        second = log_in(gw, "+79130000013", PW)  # another phone of the same member
        took["member's own password changed elsewhere"] = ended_after(
            gw,
            url,
            cam,
            second,
            lambda: ok(
                http.post(
                    f"{API}/me/password",
                    json={"old_password": PW, "new_password": "new one 3"},
                    headers=bearer(member),
                )
            ),
        )
        other_phone = token_of(gw.login("7101"))
        changed: dict[str, str] = {}

        def change_own() -> None:
            r = http.post(
                f"{API}/me/password",
                json={"old_password": OWNER_PW, "new_password": "owner's new 4"},
                headers=owner,
            )
            ok(r)
            changed["token"] = r.json()["access_token"]

        took["owner's password changed elsewhere"] = ended_after(
            gw, url, cam, other_phone, change_own
        )
        took["owner's password reset by support"] = ended_after(
            gw,
            url,
            cam,
            changed["token"],
            lambda: ok(
                http.post(
                    f"{API}/admin/contracts/7101/password",
                    json={"password": "from support 5"},
                    headers=gw.admin,
                ),
                204,
            ),
        )
        again = log_in(gw, "7101", "from support 5")
        took["contract suspended"] = ended_after(
            gw,
            url,
            cam,
            again,
            lambda: ok(http.post(f"{API}/admin/contracts/7101/suspend", headers=gw.admin)),
        )
        ok(http.post(f"{API}/admin/contracts/7101/resume", headers=gw.admin))
        took["contract terminated"] = ended_after(
            gw,
            url,
            cam,
            log_in(gw, "7101", "from support 5"),
            lambda: ok(http.post(f"{API}/admin/contracts/7101/terminate", headers=gw.admin)),
        )
    for path, seconds in took.items():
        print(f"live session ended {seconds * 1000:.0f} ms after: {path}")
    assert len(took) == 7
