"""Dashboard in headless Chromium: login, a real job to success, plots, devices, labels and layout.

Screenshots go to ``test-output/dashboard/`` at the repository root. The tests need
``/usr/bin/chromium`` (Debian's package) and Playwright's Python package; they skip without them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.stack import (
    ServiceStack,
    publish_evaluated_artifact,
    submit_job,
    upload_model,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = os.environ.get("UNIQL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
# A tiny model compresses in about a minute on two CPU cores; the margin covers slow machines.
JOB_SUCCESS_TIMEOUT_MS = 300_000

UNLABELLED_CONTROLS_JS = """
() => Array.from(document.querySelectorAll('input, select, textarea, button'))
  .filter(el => el.type !== 'hidden')
  .filter(el => {
    if ((el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')) return false;
    if (el.labels && Array.from(el.labels).some(label => label.textContent.trim())) return false;
    if (el.tagName === 'BUTTON' && el.textContent.trim()) return false;
    return true;
  })
  .map(el => el.outerHTML)
"""
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, stack: ServiceStack, token: str) -> None:
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/(jobs|models)$"))


def shoot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def check_layout(page, name: str) -> None:
    """Screenshot the page at 1280 and 390 px; assert labelled controls and no horizontal overflow."""
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == [], f"controls without a label on {name}"
    for label, viewport in (("1280", WIDE), ("390", NARROW)):
        page.set_viewport_size(viewport)
        overflow = page.evaluate(OVERFLOW_JS)
        assert overflow <= 0, f"{name} overflows horizontally by {overflow} px at {label} px wide"
        shoot(page, f"{name}-{label}")
    page.set_viewport_size(WIDE)


def test_login_rejects_bad_token_then_accepts_good(page, idle_stack):
    page.goto(f"{idle_stack.url}/dashboard/login")
    check_layout(page, "login")
    page.get_by_label("API token").fill("uq_wrong")
    page.get_by_role("button", name="Log in").click()
    assert "invalid, expired or revoked" in page.get_by_role("alert").inner_text()
    shoot(page, "login-rejected")

    log_in(page, idle_stack, idle_stack.submit_token)
    assert page.get_by_role("heading", name="Compression jobs").is_visible()
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["uniql_dashboard_token"]["httpOnly"] is True
    assert page.evaluate("() => document.cookie") == ""


def test_job_reaches_success_live_and_shows_plots(page, working_stack, tiny_model_dir):
    source_id = upload_model(working_stack, tiny_model_dir)
    log_in(page, working_stack, working_stack.submit_token)
    job = submit_job(working_stack, source_id, "tiny-llama")

    # The row appears and advances through polling alone; the page is never reloaded.
    row = page.locator(f'tr[data-job-id="{job["id"]}"]')
    row.wait_for(timeout=15_000)
    page.locator(f'tr[data-job-id="{job["id"]}"] .state-running').wait_for(timeout=60_000)
    shoot(page, "jobs-running")
    page.locator(f'tr[data-job-id="{job["id"]}"] .state-succeeded').wait_for(timeout=JOB_SUCCESS_TIMEOUT_MS)
    assert "100 %" in row.inner_text()
    check_layout(page, "jobs-succeeded")

    row.get_by_role("link").click()
    page.wait_for_url(f"**/dashboard/jobs/{job['id']}")
    stages = page.locator(".timeline .stage")
    assert stages.count() == len(job["stages"])
    assert page.locator(".timeline .stage-done").count() == len(job["stages"])
    assert page.locator(".log-line").count() > len(job["stages"])
    assert page.get_by_role("button", name="Cancel job").count() == 0
    check_layout(page, "job-succeeded")

    page.get_by_role("link", name="acme/tiny-llama:latest").click()
    page.wait_for_url("**/dashboard/models/acme/tiny-llama/latest")
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    assert page.locator("svg.chart .chart-value").count() >= 9  # 3 rates x (wiki, books, size)
    assert page.get_by_text("global pruning rate (%)").count() == 2
    assert page.locator("table.rates tbody tr").count() == 3
    check_layout(page, "artifact-tiny-llama")


def test_device_appears_after_heartbeat(page, idle_stack):
    log_in(page, idle_stack, idle_stack.pull_token)
    page.goto(f"{idle_stack.url}/dashboard/devices")
    with idle_stack.client(idle_stack.pull_token) as api:
        device = api.post("/v1/devices", json={"name": "browser-phone", "model": "acme/tiny-llama:latest",
                                                "hardware": {"memory_bytes": 8_000_000_000}}).json()
        for index in range(5):
            beat = {"rate": [0.35, 0.35, 0.15, 0.15, 0.0][index], "bands": list(range([1, 1, 3, 3, 4][index])),
                    "available_memory_bytes": (3 + index) * 700_000_000, "tokens_per_second": 18.0 + 2.5 * index}
            assert api.post(f"/v1/devices/{device['id']}/heartbeats", json=beat).status_code == 201

    row = page.locator('tr[data-device="browser-phone"]')
    row.wait_for(timeout=15_000)
    assert "0, 1, 2, 3" in row.inner_text()
    trend = row.locator("svg.sparkline").get_attribute("aria-label")
    assert trend == "tokens/s over the last 5 heartbeats: latest 28, range 18 to 28"
    check_layout(page, "devices")

    row.get_by_role("link").click()
    page.wait_for_url(f"**/dashboard/devices/{device['id']}")
    assert page.locator("svg.chart").count() == 3
    assert page.get_by_text("seconds before the latest heartbeat").count() == 3
    check_layout(page, "device")


def test_cancel_and_retry_buttons(page, idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "browser-cancel")
    log_in(page, idle_stack, idle_stack.submit_token)
    page.goto(f"{idle_stack.url}/dashboard/jobs/{job['id']}")
    page.get_by_role("button", name="Cancel job").click()
    page.locator("#job-state.state-cancelled").wait_for()
    shoot(page, "job-cancelled")
    page.get_by_role("button", name="Retry job").click()
    page.locator("#job-state.state-queued").wait_for()
    assert page.get_by_role("button", name="Cancel job").is_visible()
    assert "job retried (retry 1)" in page.locator(".log").inner_text()


def test_registry_pages_fit_both_widths(page, idle_stack, tmp_path):
    publish_evaluated_artifact(idle_stack, tmp_path, "layout-check")
    log_in(page, idle_stack, idle_stack.submit_token)
    page.goto(f"{idle_stack.url}/dashboard/models")
    check_layout(page, "models")
    page.goto(f"{idle_stack.url}/dashboard/models/acme/layout-check/v1")
    assert page.locator("svg.chart").count() == 3
    check_layout(page, "artifact-with-tasks")
