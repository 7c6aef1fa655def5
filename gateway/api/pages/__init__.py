"""Pages the gateway serves itself: a minimal live viewer, until the cabinet has its own.

``/live`` lists the subscriber's cameras, ``/live/{camera}`` plays one over WHEP. The page holds
no data: it logs in (or takes ``#token=…`` from the URL fragment, which never reaches a server)
and then uses the same API as any client, so it needs no checks of its own.

Its script and style are files of their own, so the page's Content-Security-Policy
allows no inline code at all: an injected ``<script>`` would not run.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.api.schemas import DeviceIdPath

router = APIRouter(include_in_schema=False)

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": PAGE_CSP,
}


def _read(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _viewer() -> HTMLResponse:
    return HTMLResponse(_read("viewer.html"), headers=_HEADERS)


@router.get("/live/viewer.js")
def viewer_js() -> Response:
    return Response(_read("viewer.js"), media_type="text/javascript")


@router.get("/live/viewer.css")
def viewer_css() -> Response:
    return Response(_read("viewer.css"), media_type="text/css")


@router.get("/live")
def cameras() -> HTMLResponse:
    return _viewer()


@router.get("/live/{device_id}")
def camera(device_id: DeviceIdPath) -> HTMLResponse:  # the page reads the id itself
    return _viewer()
