"""An intercom call in the cabinet, in Debian's Chromium against the real gateway, broker, ingest
and a simulated panel (MQTT) with a real RTSP stream and back-channel: the call rings on two open
cabinet pages of the called home (a modal dialog with the panel's video, the ringtone playing,
the focus inside), one answers and the other closes with «отвечено»; the member's microphone (a
1000 Hz WAV) reaches the panel; «Открыть дверь» shows the panel's answer; «Завершить» ends it;
the next call, declined on one page, closes on the other.
A page of the neighbour's contract, open the whole time, never rings.

The browser, the gateway's HTTP server (its WebRTC sessions, RTSP reader and back-channel) and
the panel's RTSP server run in a network namespace of the test's own (tests/netns.py); the
broker, ingest, the simulated panel's MQTT side and the database stay outside."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests import netns
from tests.browser import CHROMIUM, PHONE, accessible, fits_phone, screenshot
from tests.conftest import Gateway
from tests.rtsp import RtspServer, backchannel_to_file
from tests.support import free_port
from tests.test_cabinet_browser import log_in
from tests.test_call_audio import MEMBER_HZ, RATE, TONE, VIDEO, dominant_hz, ulaw_decode
from tests.test_call_audio_browser import tone_wav
from tests.test_calls import entrance
from tests.test_commands import controller
from tests.test_ingest import wait_until
from tests.test_live_browser import CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} (apt install chromium)"),
]
# Remembers whether the page's stream is up and whether a call dialog ever appeared on the page
# (a neighbour's page must never ring).
RANG = """
addEventListener("moydom:online", (event) => { window.online = event.detail; });
new MutationObserver(() => {
  if (document.querySelector("dialog")) window.rang = true;
}).observe(document, {childList: true, subtree: true});
"""
PLAYING = """() => {
  const video = document.getElementById("call-video"), tone = document.querySelector("#call audio");
  return video && video.videoWidth > 0 && tone && !tone.paused;
}"""
PAUSED = "document.querySelector('#call audio').paused"
# The calls the page's own login sees.
CALLS = """async () => {
  const auth = {Authorization: `Bearer ${localStorage.getItem("moydom-token")}`};
  return (await (await fetch("/api/v1/calls", {headers: auth})).json()).items;
}"""
FOCUS_IN_DIALOG = "() => document.activeElement && !!document.activeElement.closest('dialog')"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the page uses the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@contextmanager
def chromium(microphone: Path) -> Iterator[Browser]:
    """Chromium whose microphone plays ``microphone`` (granted without a prompt)."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def phone(browser: Browser) -> BrowserContext:
    context = browser.new_context(
        viewport=PHONE, locale="ru-RU", timezone_id="Asia/Novosibirsk", service_workers="block"
    )
    context.set_default_timeout(20_000)
    return context


def test_a_call_rings_on_every_page_of_the_home_and_one_answers(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    panel_port, http_port = free_port(), free_port()
    heard = tmp_path / "backchannel.ulaw"
    gw = gateway_factory(stream_recheck_s=0.5, webrtc_host_addresses=["10.203.0.1"])
    site = entrance(gw, f"rtsp://127.0.0.1:{panel_port}/panel")
    panel = controller(gw, site["panel"])
    microphone = tone_wav(tmp_path / "tone.wav", MEMBER_HZ)

    def journey() -> dict[str, Any]:
        got: dict[str, Any] = {}
        with (
            RtspServer(
                panel_port,
                {"/panel": f"( {VIDEO} {TONE} )"},
                {"/panel": backchannel_to_file(heard)},
            ),
            netns.serve(gw.ctx, "127.0.0.1", http_port) as url,
            chromium(microphone) as browser,
        ):
            home, neighbour = phone(browser), phone(browser)
            home.add_init_script(RANG)
            neighbour.add_init_script(RANG)
            first = home.new_page()
            log_in(first, url, "4312")
            expect(first).to_have_url(f"{url}/app/")
            second = home.new_page()  # the same login's second open page (shared token)
            second.goto(f"{url}/app/")
            other = neighbour.new_page()
            log_in(other, url, "4314")
            expect(other).to_have_url(f"{url}/app/")
            pages: list[Page] = [first, second, other]
            for page in pages:  # each page's stream is open before the visitor dials
                page.wait_for_function("() => window.online === true")

            panel.dial("12")
            for page in (first, second):
                expect(page.get_by_role("dialog", name="Звонок в домофон")).to_be_visible()
                page.wait_for_function(PLAYING, timeout=30_000)
                got.setdefault("focus", []).append(page.evaluate(FOCUS_IN_DIALOG))
            about = re.compile(r"^entrance-1, кв\. 12, \d{1,2} \S+ \d{2}:\d{2}$")
            expect(first.locator("#call-about")).to_have_text(about)  # in the home's zone
            fits_phone(first)
            accessible(first)
            screenshot(first, "cabinet-camera-call-ringing")

            dialog = first.get_by_role("dialog")
            dialog.get_by_role("button", name="Ответить").click()
            expect(dialog.get_by_role("button", name="Завершить")).to_be_visible()
            expect(second.get_by_role("dialog")).to_have_count(0)
            got["second_status"] = second.locator("#status").inner_text()
            got["tone_after_answer"] = first.evaluate(
                "document.querySelector('#call audio').paused"
            )
            got["heard"] = _wait(lambda: heard.exists() and heard.stat().st_size >= RATE)

            dialog.get_by_role("button", name="Открыть дверь").click()
            expect(first.locator("#call-status")).to_have_text("Дверь открыта")
            accessible(first)
            screenshot(first, "cabinet-camera-call-answered")
            dialog.get_by_role("button", name="Завершить").click()
            expect(first.get_by_role("dialog")).to_have_count(0)
            got["first_status"] = first.locator("#status").inner_text()

            panel.dial("12")  # the next visitor: declined on one page, gone from the other
            expect(first.get_by_role("dialog")).to_be_visible()
            second.get_by_role("dialog").get_by_role("button", name="Отклонить").click()
            for page in (first, second):
                expect(page.get_by_role("dialog")).to_have_count(0)
                expect(page.locator("#status")).to_have_text("Домофон: вызов отклонён")
            got["neighbour_rang"] = other.evaluate("window.rang === true")
            got["neighbour_calls"] = other.evaluate(CALLS)
            screenshot(first, "cabinet-camera-call-ended")
        return got

    with netns.NetNamespace() as ns:
        got = ns.run(journey)
    at_panel = dominant_hz(ulaw_decode(heard.read_bytes()[RATE // 4 :]), RATE)
    print(f"call pages: {got}; the member's {MEMBER_HZ:.0f} Hz at the panel as {at_panel:.1f} Hz")
    assert got["focus"] == [True, True]
    assert "отвечено" in got["second_status"]
    assert got["tone_after_answer"] is True
    assert got["heard"], "the member's microphone never reached the panel"
    assert abs(at_panel - MEMBER_HZ) < 10, at_panel
    assert panel.actions, "the door was never told to open"
    assert got["first_status"] == "Домофон: вызов завершён"
    assert got["neighbour_rang"] is False and got["neighbour_calls"] == []


def _wait(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    try:
        wait_until(check, timeout)
    except AssertionError:
        return False
    return True
