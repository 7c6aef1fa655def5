"""Pages the gateway serves itself: a minimal live viewer, until the cabinet has its own.

``/live`` lists the subscriber's cameras, ``/live/{camera}`` plays one over WHEP. The page holds
no data: it logs in (or takes ``#token=…`` from the URL fragment, which never reaches a server)
and then uses the same API as any client, so it needs no checks of its own.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from gateway.api.schemas import DeviceIdPath

router = APIRouter(include_in_schema=False)

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _viewer() -> HTMLResponse:
    page = files(__package__).joinpath("viewer.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/live")
def cameras() -> HTMLResponse:
    return _viewer()


@router.get("/live/{device_id}")
def camera(device_id: DeviceIdPath) -> HTMLResponse:  # the page reads the id itself
    return _viewer()
