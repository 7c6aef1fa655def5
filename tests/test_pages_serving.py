"""The page apps' static files: served by name from their own directory only, revalidated by
ETag, pages under the no-inline-script CSP; anything else is 404."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Gateway


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moydom.db'}"


def test_shared_files_are_served_and_revalidated(gateway: Gateway) -> None:
    r = gateway.http.get("/static/api.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    again = gateway.http.get("/static/api.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert gateway.http.get("/static/base.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2f__init__.py",
        "/static/__init__.py",
        "/static/missing.js",
        "/static/api.exe",
        "/static/API.js",
        "/nowhere/api.js",
        "/static/.hidden",
    ],
)
def test_anything_but_a_plain_name_of_the_app_is_404(gateway: Gateway, path: str) -> None:
    assert gateway.http.get(path).status_code == 404


def test_the_root_leads_to_the_cabinet_and_the_live_viewer_stays(gateway: Gateway) -> None:
    r = gateway.http.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, "/app/")
    viewer = gateway.http.get("/live")
    assert viewer.status_code == 200
    assert "script-src 'self'" in viewer.headers["content-security-policy"]
    assert gateway.http.get("/live/viewer.js").status_code == 200


def test_the_service_worker_keeps_every_file_of_the_cabinet_shell() -> None:
    """A file left out of sw.js's SHELL list would be missing offline."""
    pages = Path(__file__).resolve().parent.parent / "gateway/api/pages"
    shell = set(re.findall(r'"(/(?:app|static)/[^"]*)"', (pages / "cabinet/sw.js").read_text()))
    expected = {"/static/" + f.name for f in (pages / "common").iterdir()}
    for f in (pages / "cabinet").iterdir():
        if f.name != "sw.js":
            page = f.name.removesuffix(".html")
            expected.add(f"/app/{f.name}" if page == f.name else f"/app/{page}")
    expected = {"/app/" if e == "/app/index" else e for e in expected}
    assert expected <= shell, sorted(expected - shell)
