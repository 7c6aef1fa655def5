"""A stock browser under the gateway's own rules: the viewer page runs under its
Content-Security-Policy, and a page opens the event stream with the
``bearer.<token>`` subprotocol (browsers cannot set headers on WebSockets).
A foreign origin's refusal is tested in tests/test_stream_auth.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import Gateway
from tests.test_events import send
from tests.test_hardening_http import serving
from tests.test_live_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} (apt install chromium)"),
]

OPEN_STREAM = """([url, token]) => new Promise((done) => {
  const ws = new WebSocket(url, ["moydom", "bearer." + token]);
  window.streamed = [];
  ws.onmessage = (m) => window.streamed.push(JSON.parse(m.data));
  ws.onopen = () => done({open: true, protocol: ws.protocol});
  ws.onclose = (e) => done({open: false, code: e.code});
})"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moydom.db'}"


def test_a_browser_page_runs_under_its_csp_and_streams_with_the_subprotocol(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway.create_contract("4401")
    gateway.start_ingest()
    motion = gateway.create_device("4401", "motion", "hall")
    token = gateway.login("4401")["Authorization"].removeprefix("Bearer ")
    violations: list[str] = []
    with serving(gateway.ctx) as (host, port), sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium", executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security" in m.text else None,
            )
            page.goto(f"http://{host}:{port}/live")
            # The page's script ran (no token yet: it shows the login form).
            page.wait_for_selector("#login:not(.hidden)", timeout=10_000)
            url = f"ws://{host}:{port}/api/v1/stream"
            opened: dict[str, Any] = page.evaluate(OPEN_STREAM, [url, token])
            assert opened == {"open": True, "protocol": "moydom"}
            time.sleep(0.3)
            send(gateway, motion, {"occupancy": True, "seq": 11})
            page.wait_for_function("() => window.streamed.length > 0", timeout=10_000)
            streamed = page.evaluate("window.streamed")
            assert streamed[0]["event"]["body"]["seq"] == 11

        finally:
            browser.close()
    assert violations == []
