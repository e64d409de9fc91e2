"""The console in a real browser: Playwright for Python driving Debian's chromium.

Playwright's own browser download is not reachable here, so the tests launch the system chromium
(`apt-get install chromium`; `.ci/run` installs it when missing) and skip, saying why, when it or the
playwright package is absent. One browser per module; each test opens its own context and fails on a
JavaScript console error, a failed request, an HTTP error answer or a request to another origin.
Screenshots of each page go to $WATT_CONSOLE_SHOTS, else to the test's temp folder (never committed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wattlm.serve import running_server
from wattlm.serve.keys import KeyStore

from .conftest import console_app

CHROMIUM = Path(os.environ.get("WATT_CHROMIUM", "/usr/bin/chromium"))
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ["WATT_CONSOLE_SHOTS"]) if os.environ.get("WATT_CONSOLE_SHOTS") else \
        tmp_path_factory.mktemp("console-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def module_home(workspace_template, tmp_path_factory):
    copy = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(workspace_template, copy)
    return copy


@pytest.fixture(scope="module")
def base_url(module_home):
    with running_server(console_app(module_home)) as url:
        yield url


# Visible inputs, selects, textareas and buttons with no accessible name (label, aria-label(ledby), text).
UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


class Watched:
    """A page whose console errors, failed requests, error answers and foreign requests are recorded."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        self.page.on("request", lambda r: r.url.startswith((base, "data:")) or self.problems.append(f"foreign: {r.url}"))

    def goto(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def shot(self, folder: Path, name: str) -> None:
        """A screenshot, after checking that every control on the page (scripted ones too) has a name."""
        assert not self.page.evaluate(UNLABELLED), f"{name}: controls without a label"
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def watched(browser, base_url):
    page = Watched(browser, base_url)
    yield page
    page.close()


def test_overview_lists_the_models_by_tier(watched, shots):
    page = watched.goto("/")
    tiers = page.locator(".card.model").evaluate_all("cards => cards.map(c => c.dataset.tier)")
    assert tiers == sorted(tiers, key=["foundation", "industry", "task"].index) and len(set(tiers)) == 3
    names = page.locator(".card.model h4").all_inner_texts()
    assert names == ["grid-foundation", "grid-industry", "grid-task"]
    assert page.locator("tr.export").count() == 2
    watched.shot(shots, "overview")


def test_model_page_shows_lineage_and_metrics(watched, shots):
    page = watched.goto("/")
    page.get_by_role("link", name="grid-task", exact=True).click()
    page.wait_for_url("**/models/*")
    lineage = page.locator("#lineage svg")
    assert lineage.is_visible()
    assert lineage.locator("g.node").count() == 6  # foundation, corpus, industry, task, two exports
    assert "51.75" in page.locator("#metrics").inner_text() and "24.5" in page.locator("#metrics").inner_text()
    assert page.locator("#loss-curve svg").is_visible()
    assert page.locator("#exports a[download]").count() == 2
    watched.shot(shots, "model")


def test_playground_streams_an_answer_with_citations(watched, shots):
    page = watched.goto("/playground")
    page.get_by_label("Model", exact=True).select_option("echo")
    page.get_by_label("Knowledge base", exact=True).select_option("grid-docs")
    page.get_by_label("Message or prompt").fill("How often must the pump seal be replaced?")
    page.get_by_role("button", name="Send").click()
    citation = page.locator("#play-citations button.citation").first
    citation.wait_for(timeout=120_000)
    assert "8000" in page.locator("#play-answer").inner_text()
    assert "pump_rules.md" in citation.get_attribute("aria-label")
    citation.click()
    cited = page.locator("#play-passage mark.cited")
    cited.wait_for()
    assert "8000" in cited.inner_text()
    assert "/v1/chat/completions" in page.locator("#play-curl").inner_text()
    assert "extra_body" in page.locator("#play-python").inner_text()
    watched.shot(shots, "playground")


def test_other_pages_render_cleanly(watched, shots):
    page = watched.goto("/")
    page.get_by_role("link", name="grid-corpus").first.click()
    page.locator("#preview-form button[type=submit]").click()
    page.locator("#preview-result").filter(has_text="would be dropped").wait_for()
    watched.shot(shots, "dataset")
    for path, name in (("/eval", "eval"), ("/kb", "kb-list"), ("/keys", "keys")):
        watched.goto(path)
        watched.shot(shots, name)
    watched.goto("/kb")
    page.get_by_role("link", name="grid-docs").click()
    page.get_by_label("Query").fill("relay zone 1 trip time")
    page.get_by_role("button", name="Search").click()
    page.locator("#kb-hits li").first.wait_for(timeout=60_000)
    watched.shot(shots, "kb")


def test_keyboard_reaches_the_content_and_the_language_switch(watched):
    page = watched.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    page.focus("#lang-select")
    page.select_option("#lang-select", "zh")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # on the Switch button: the form posts and the page comes back in Chinese
    page.get_by_role("heading", name="按层级的模型").wait_for()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"


def test_sign_in_is_required_once_a_key_exists(browser, workspace_template, tmp_path, shots):
    home = tmp_path / "home"
    shutil.copytree(workspace_template, home)
    key, _ = KeyStore.of_home(home).create("browser")
    with running_server(console_app(home)) as url:
        watched = Watched(browser, url)
        page = watched.goto("/models/grid-task")
        assert "/login" in page.url
        watched.shot(shots, "login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/models/grid-task")
        assert page.locator("#lineage svg").is_visible()
        assert page.locator(".signout .who").inner_text() == "browser"
        watched.close()
