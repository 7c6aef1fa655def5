"""Pages the gateway serves itself: the «Мой дом» cabinet, the dispatch console, the operator
view, and the minimal live viewer.

Each app is a directory of static files beside this module (``cabinet/`` at ``/app/``,
``dispatch/`` at ``/dispatch/``, ``operator/`` at ``/operator/``); what they share (the API
client, the stream client, the style) is ``common/`` at ``/static/``. The pages hold no data:
they log in and then use the public API like any other client, so they need no checks of their
own. ``/app/camera`` serves ``cabinet/camera.html``; ``/app/`` serves ``index.html``.

Scripts and styles are files of their own, so the Content-Security-Policy allows no inline code
at all: an injected ``<script>`` would not run. Files are revalidated on every load (``no-cache``
with an ETag): the service worker, not the HTTP cache, keeps the shell for offline use.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.schemas import DeviceIdPath

router = APIRouter(include_in_schema=False)

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; manifest-src 'self'; "
    "worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": PAGE_CSP,
}
APPS = {"app": "cabinet", "dispatch": "dispatch", "operator": "operator", "static": "common"}
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "webmanifest": "application/manifest+json",
    "json": "application/json",
    "wav": "audio/wav",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}(\.(?P<ext>[a-z]+))?$")


@lru_cache(maxsize=256)
def _asset(directory: str, name: str) -> tuple[bytes, str] | None:
    """The file's bytes and ETag, or None; only plain names in the app's own directory."""
    node = files(__package__).joinpath(directory, name)
    if not node.is_file():
        return None
    body = node.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def serve(app: str, name: str, request: Request) -> Response:
    """One file of an app; a name without a suffix is a page (``camera`` → ``camera.html``)."""
    match = _NAME.match(name)
    if match is None:
        raise HTTPException(404, "Not Found")
    ext = match.group("ext") or "html"
    found = _asset(APPS[app], name if match.group("ext") else f"{name}.html")
    if found is None or ext not in _TYPES:
        raise HTTPException(404, "Not Found")
    body, etag = found
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if ext == "html":
        headers.update(_HEADERS, **{"Cache-Control": "no-cache"})
    if name == "sw.js":  # the cabinet's worker controls the whole /app/ scope
        headers["Service-Worker-Allowed"] = f"/{app}/"
        # A worker runs under its own script's policy: it fetches the pages and assets it caches.
        headers["Content-Security-Policy"] = "default-src 'self'"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_TYPES[ext], headers=headers)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=302)


def _routes(app: str) -> None:
    def index(request: Request) -> Response:
        return serve(app, "index", request)

    def asset(name: str, request: Request) -> Response:
        return serve(app, name, request)

    router.add_api_route(f"/{app}/", index, methods=["GET"])
    router.add_api_route(f"/{app}/{{name}}", asset, methods=["GET"])


for _app in APPS:
    _routes(_app)


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
