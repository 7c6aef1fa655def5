"""What every page test shares: a headless Debian Chromium against a gateway served on
loopback, the accessibility check (axe-core, serious and critical violations fail), the
360 px phone check, and a screenshot of the page each journey ends on.

Screenshots go to ``var/artifacts/screenshots/`` of the checkout (or ``$MOYDOM_ARTIFACTS``);
CI keeps that directory as the run's artifacts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import BrowserContext, Page, ViewportSize, sync_playwright

from tests.test_live_browser import CHROMIUM, CHROMIUM_ARGS

PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
ARTIFACTS = Path(
    os.environ.get("MOYDOM_ARTIFACTS", Path(__file__).resolve().parent.parent / "var/artifacts")
)
_axe = Axe()

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "accessible", "browser", "fits_phone", "screenshot"]


@contextmanager
def browser(
    profile: Path, viewport: ViewportSize = DESKTOP, **options: Any
) -> Iterator[BrowserContext]:
    """One Chromium profile (its own localStorage, service workers, permissions)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=viewport,
            locale="ru-RU",
            timezone_id="Asia/Novosibirsk",
            **options,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    violations = _axe.run(page).response["violations"]
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], "\n".join(bad)


def fits_phone(page: Page) -> None:
    """At the page's current width nothing scrolls sideways."""
    wide = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wide <= 0, f"{page.url} scrolls {wide} px sideways"


def screenshot(page: Page, name: str) -> Path:
    """Save the page as ``<name>.png`` among the run's artifacts; the path is returned."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
