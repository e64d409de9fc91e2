"""A recipe started from the browser on a tiny model survives its page being closed, and finishes.

Drives Debian's chromium through Playwright against a real server (uvicorn in a thread) whose runs are
real detached `watt run` processes. Also checks that the pages raise no JavaScript error, no request
fails or answers an error, and nothing is requested from another origin. Screenshots go to
`$WATT_CONSOLE_SHOTS` (or the test's temp folder); they are not committed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from wattlm.jobs import Jobs
from wattlm.models.store import add_model
from wattlm.registry import Registry

CHROMIUM = Path("/usr/bin/chromium")
STEPS = 80
DOCS = {
    "patrol.txt": "Substation patrol: check the breaker counters, the oil level of the main transformer and the "
                  "temperature of every cable joint. Record defects in the log before the shift ends. " * 3,
    "relay.md": "# Relay settings\nThe dispatcher confirms relay protection settings before any switching "
                "operation and writes the order into the ticket. " * 3,
    "live-line.txt": "Live-line work needs a work permit, two qualified workers and a safety supervisor on "
                     "site. Ground the line at both ends before touching the conductor. " * 3,
}


def _playwright():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright for Python is not installed (pip install playwright)")
    return sync_playwright


@pytest.fixture
def workspace(tmp_path, tiny_model_dir):
    ws = tmp_path / "ws"
    registry = Registry(ws)
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    registry.close()
    recipe = tmp_path / "examples" / "tiny"
    (recipe / "raw").mkdir(parents=True)
    for name, text in DOCS.items():
        (recipe / "raw" / name).write_text(text)
    # The documents repeat a sentence to have enough tokens; the filters that would rightly drop them are
    # off (this test is about the run's life, not the data stage).
    (recipe / "recipe.yaml").write_text(
        "name: tiny-browser\nfoundation: tiny-base\n"
        "data: {inputs: [raw], heldout_fraction: 0.3, min_chars: 20, quality_filters: false, near_dedup: false}\n"
        f"train: {{steps: {STEPS}, seq_len: 32, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false, save_every: 20}}\n"
        "eval: {seq_len: 64, max_tokens: 400}\nexport: null\n")
    return ws, tmp_path / "examples"


@pytest.fixture
def server(workspace):
    import uvicorn

    from wattlm.console.app import create_console

    ws, examples = workspace
    app = create_console(ws)
    app.state.examples_dir = examples
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvi.started:
        assert time.monotonic() < deadline, "the console server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", ws
    uvi.should_exit = True
    thread.join(timeout=10)


class PageWatch:
    """Everything a page did wrong: console errors, uncaught exceptions, failed or error requests,
    requests to another origin."""

    def __init__(self, page, origin: str):
        self.problems: list[str] = []
        self.closing = False
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"))
        page.on("request", lambda r: r.url.startswith((origin, "data:")) or self.problems.append(f"other origin: {r.url}"))

    def _failed(self, request) -> None:
        # Closing or leaving the page aborts its open event stream: expected, not a failure.
        if not (self.closing and "/stream" in request.url and "ERR_ABORTED" in str(request.failure)):
            self.problems.append(f"failed: {request.url} {request.failure}")


def _shot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("WATT_CONSOLE_SHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _step_on(page) -> int:
    text = page.locator("#run-step").inner_text().strip()
    return int(text.split("/")[0]) if text else 0


def _wait(predicate, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_run_started_in_the_browser_outlives_its_page_and_finishes(server, tmp_path):
    sync_playwright = _playwright()
    base, ws = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            first = PageWatch(page, base)
            page.goto(f"{base}/runs")
            page.get_by_label("Example recipe").select_option("tiny/recipe.yaml")
            page.get_by_role("button", name="Run this example").click()
            page.wait_for_url(f"{base}/runs/*")
            run_id = page.url.rsplit("/", 1)[1]
            # (the console's CSP refuses eval, so waits poll from here rather than wait_for_function)
            seen = _wait(lambda: _step_on(page), 300, "the first training step on the page")
            assert page.locator("#run-status").inner_text() == "running" and 1 <= seen <= STEPS
            _shot(page, "run-live", tmp_path)
            first.closing = True
            page.close()

            # Nobody watches: the server-side job keeps training.
            jobs = Jobs(ws)
            _wait(lambda: (jobs.get(run_id).step or 0) > seen or jobs.get(run_id).status != "running",
                  300, "the run to progress with its page closed")
            assert jobs.get(run_id).status in ("running", "succeeded")

            again = browser.new_page()
            second = PageWatch(again, base)
            again.goto(f"{base}/runs/{run_id}")
            reopened = _wait(lambda: _step_on(again), 60, "the reopened page to show the step")
            assert reopened > seen
            # The curve is rebuilt from the job's events, from its first step on.
            _wait(lambda: again.locator("#loss-chart polyline").count() == 1, 60, "the loss curve")
            points = again.locator("#loss-chart polyline").get_attribute("points").split()
            assert len(points) >= 2
            if again.locator("#run-status").inner_text() == "running":
                _wait(lambda: _step_on(again) > reopened or again.locator("#run-status").inner_text() != "running",
                      300, "the reopened page to show live progress")
            _wait(lambda: again.locator("#run-status").inner_text() not in ("queued", "running"), 600,
                  "the run to finish", every=1)
            assert again.locator("#run-status").inner_text() == "succeeded"
            assert _step_on(again) == STEPS
            assert again.locator("#run-cancel").is_hidden() and again.locator("#run-resume").is_hidden()
            stages = again.locator("#run-events li.stage").all_inner_texts()
            assert [s.split(" (")[0] for s in stages[:4]] == ["foundation", "data", "industry train", "industry eval"]
            assert "train tiny-browser-industry" in again.locator("#run-log").inner_text()
            assert again.locator("#run-artifacts a").count() >= 3
            _shot(again, "run-finished", tmp_path)

            second.closing = True  # leaving the page aborts its stream if the final `done` is not yet in
            again.goto(f"{base}/runs")
            row = again.locator(f"tr[data-run='{run_id}']")
            assert row.get_attribute("data-status") == "succeeded" and "console" in row.inner_text()
            _shot(again, "runs-list", tmp_path)
            assert first.problems == [] and second.problems == []
        finally:
            browser.close()
    job = Jobs(ws).get(run_id)
    assert job.status == "succeeded" and job.origin == "console" and job.result["artifacts"]["industry"]
