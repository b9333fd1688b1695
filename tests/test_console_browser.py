"""The web console at /sim/ in a real browser (Debian's Chromium, driven by Playwright).

One simulator (the mall scenario, clock frozen) serves every test; each test opens a fresh
page (its own sessionStorage) and saves a screenshot under the artifacts directory
(``$P8815_SIM_ARTIFACTS``, else a temporary one), whose path it prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.schema.scenario import FleetTemplate, Scenario
from simulator.testing import Simulator, ThreadedSimulator

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "p8815-sim"
WAIT_MS = 15_000

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium package (CI does)",
)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with ThreadedSimulator("mall", speed=0) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("P8815_SIM_ARTIFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("console")
    path.mkdir(parents=True, exist_ok=True)
    return path


def until(ok: Any, what: str, timeout: float = WAIT_MS / 1000) -> None:
    """Poll ``ok()`` until it is true (read through locators: the page's CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Console:
    """A console page in its own browser context, with the errors it logged."""

    def __init__(self, browser: Any, url: str, artifacts: Path, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/sim/")
        self.shot = artifacts / f"{name}.png"

    def login(self, token: str = TOKEN) -> None:
        """Enter the token; wait for the first full refresh."""
        self.page.fill("#token", token)
        self.page.click("#token-form button[type=submit]")
        if token == TOKEN:
            self.page.wait_for_selector("body[data-loaded=true]", timeout=WAIT_MS)
            self.page.wait_for_selector("#chart[data-points]", timeout=WAIT_MS)

    def number(self, selector: str, attr: str) -> int:
        """An integer data attribute of an element."""
        return int(self.page.get_attribute(selector, attr) or "0")

    def close(self) -> None:
        """Save the screenshot, say where, close."""
        self.page.screenshot(path=str(self.shot), full_page=True)
        print(f"console screenshot: {self.shot}")
        self.context.close()


@pytest.fixture
def console(
    browser: Any, sim: Simulator, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Console]:
    c = Console(browser, sim.url, artifacts, request.node.name)
    yield c
    c.close()


def test_the_page_loads_without_errors_and_lists_the_fleet(console: Console) -> None:
    console.login()
    page = console.page
    until(lambda: page.locator("#fleet tbody tr").count() == 4, "four rows")
    ids = page.locator("#fleet tbody th").all_inner_texts()
    assert ids == ["parking", "street", "metro", "shop"]
    assert "1–4 of 4 devices" in page.inner_text("#page-info")
    assert page.inner_text("#clock-now") == "2024-12-02 11:00:00 UTC"
    assert page.is_hidden("#exposed")  # served on loopback: no notice
    assert console.errors == []


def test_a_burst_injected_from_the_page_raises_the_chart(console: Console) -> None:
    console.login()
    page = console.page
    page.click("#fleet tbody th button:text('shop')")
    until(lambda: "shop" in (page.get_attribute("#chart", "aria-label") or ""), "shop's chart")
    before = console.number("#chart", "data-total-in")
    peak_before = console.number("#chart", "data-max-in")
    page.select_option("#event-kind", "burst")
    page.fill("#ev-visitors", "3000")
    page.fill("#ev-minutes", "5")
    page.click("#event-form button[type=submit]")
    until(lambda: "injected" in page.inner_text("#status"), "the event injected")
    page.fill("#advance", "10m")
    page.click("#advance-form button[type=submit]")
    until(lambda: console.number("#chart", "data-total-in") > before + 1500, "the chart rising")
    assert console.number("#chart", "data-max-in") > peak_before + 100
    assert console.number("#hours", "data-total-in") == console.number("#chart", "data-total-in")
    assert console.errors == []


def test_pausing_freezes_the_time_shown(console: Console, sim: Simulator) -> None:
    console.login()
    page = console.page
    page.fill("#speed", "600")
    page.click("#speed-form button[type=submit]")
    first = page.inner_text("#clock-now")
    until(lambda: page.inner_text("#clock-now") != first, "the time moving")
    page.click("#pause")
    page.wait_for_selector("#pause[aria-pressed=true]", timeout=WAIT_MS)
    frozen = page.inner_text("#clock-now")
    time.sleep(2.5)  # more than one poll
    assert page.inner_text("#clock-now") == frozen
    assert page.inner_text("#pause") == "Resume"
    assert sim.control.clock()["frozen"] is True
    assert console.errors == []


def test_a_wrong_token_is_refused_with_a_clear_message(console: Console) -> None:
    console.login("not-the-token")
    page = console.page
    page.wait_for_selector("#token-error:not([hidden])", timeout=WAIT_MS)
    text = page.inner_text("#token-error")
    assert text.startswith("token refused: 401")
    assert "wrong control token" in text
    assert page.locator("#fleet tbody tr").count() == 0


def test_a_fleet_of_10000_loads_one_page(browser: Any, artifacts: Path) -> None:
    scenario = Scenario(name="fleet-10000", fleet=FleetTemplate(count=10_000))
    with ThreadedSimulator(scenario, speed=0, devices=["door-0000"]) as s:
        c = Console(browser, s.url, artifacts, "fleet-10000")
        try:
            t0 = time.perf_counter()
            c.login()
            until(lambda: c.page.locator("#fleet tbody tr").count() > 0, "the first rows")
            elapsed = time.perf_counter() - t0
            print(f"10,000-device fleet: first table render {elapsed:.2f} s after the token")
            assert c.number("#fleet", "data-rows") == 50
            assert "1–50 of 10,000 devices" in c.page.inner_text("#page-info")
            c.page.fill("#search", "door-9999")
            c.page.click("#search-form button[type=submit]")
            until(lambda: "of 1 " in c.page.inner_text("#page-info"), "the search's answer")
            assert c.page.locator("#fleet tbody th").all_inner_texts() == ["door-9999"]
            assert c.errors == []
        finally:
            c.close()
