"""The local console in headless Chromium (Debian's chromium and chromium-driver, which
`make test` installs): a conversation with the Data Analyst that calls a tool, its text shown
before the run ends, the state machine graph lit at the tool state, an upload from the
browser to the bucket, and an approval given. Screenshots go to .local/console-*.png."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from local.console.server import Console
from local.openai_server import Step
from local.stack_session import LocalThreadline, local_threadline
from tests.conftest import REPO
from threadline import runtime

pytestmark = pytest.mark.e2e
SCREENSHOTS = REPO / ".local"
REVENUE_BY_REGION = "SELECT region, SUM(amount) AS revenue FROM sales GROUP BY region"
# Headless, and nothing reaching out to Google's services (the network is closed here).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)  # fmt: skip


@dataclass
class Served:
    url: str
    product: LocalThreadline

    def script(self, user: str, thread_id: str, *steps: Step) -> None:
        """The model's next turns on the user's thread."""
        assert self.product.openai is not None
        remote_id = runtime.current().thread_store().get(user, thread_id).remote_id
        self.product.openai.script.extend(steps, key=remote_id)


@pytest.fixture(scope="module")
def console() -> Iterator[Served]:
    with local_threadline(aws_port=0, websocket_port=0, openai_latency_seconds=1.0) as product:
        api = product.http_api()
        try:
            with Console(product, api.start(0)) as served:
                yield Served(served.url, product)
        finally:
            api.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium, "no chromium: `make test` installs Debian's chromium and chromium-driver"
    assert driver, "no chromedriver: `make test` installs Debian's chromium-driver"
    options = Options()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def shown(browser: WebDriver, selector: str, timeout: float = 30) -> WebElement:
    found: WebElement = WebDriverWait(browser, timeout, poll_frequency=0.05).until(
        lambda page: next(iter(page.find_elements(By.CSS_SELECTOR, selector)), False)
    )
    return found


def screenshot(browser: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"console-{name}.png"))


def ask(browser: WebDriver, question: str) -> str:
    """Send a question; the id of its run."""
    asked = len(browser.find_elements(By.CSS_SELECTOR, ".run"))
    box = browser.find_element(By.ID, "message")
    box.send_keys(question)
    browser.find_element(By.ID, "send").click()
    run = shown(browser, f".run:nth-of-type({asked + 1})")
    return str(run.get_attribute("data-run-id"))


def test_a_conversation_in_the_console(console: Served, browser: WebDriver, tmp_path: Path) -> None:
    browser.get(console.url)
    user = f"console-{time.monotonic_ns()}"
    browser.find_element(By.ID, "user").clear()
    browser.find_element(By.ID, "user").send_keys(user)
    browser.find_element(By.ID, "sign-in").click()
    signed_in = shown(browser, "#who:not(:empty)").text
    thread_id = signed_in.rpartition(" ")[2]
    assert signed_in == f"signed in as {user}, thread {thread_id}"

    # An upload, from the browser straight to the bucket with the presigned POST.
    targets = tmp_path / "targets.csv"
    targets.write_text("region,target\nNorth,30000\nSouth,20000\n")
    browser.find_element(By.ID, "file").send_keys(str(targets))
    assert shown(browser, '.file[data-status="ingested"]').text == "targets.csv"

    # A question the Data Analyst answers with a tool: text before the end, the graph lit.
    # The answer takes eight seconds to write: its text is shown before the run ends however
    # late the relay starts.
    console.script(
        user,
        thread_id,
        Step.call("query_database", {"query": REVENUE_BY_REGION}),
        Step.say("Revenue by region: North leads, then West, East and South.").taking(8),
    )
    run_id = ask(browser, "What is our revenue by region?")
    run = f'.run[data-run-id="{run_id}"]'
    shown(browser, f'{run}[data-text-before-end="true"]')
    screenshot(browser, "streaming")
    shown(browser, f'{run} .status[data-status="completed"]')
    shown(browser, 'g.state.entered[data-state="ProcessToolCalls"]')
    answer = browser.find_element(By.CSS_SELECTOR, f"{run} .answer").text
    assert answer == "Revenue by region: North leads, then West, East and South."
    assert "query_database" in browser.find_element(By.CSS_SELECTOR, f"{run} .tools").text
    assert '"rows"' in shown(browser, "#calls .call").text  # the tool's result
    screenshot(browser, "graph")

    # A tool that needs approval: approved in the page, it runs, its file is offered.
    run_id = ask(browser, "Export revenue by region as a CSV file")
    run = f'.run[data-run-id="{run_id}"]'
    shown(browser, f'{run} .status[data-status="requires_approval"]')
    screenshot(browser, "approval")
    shown(browser, f"{run} .approval .approve").click()
    shown(browser, f'{run} .status[data-status="completed"]')
    assert shown(browser, f"{run} a.download").text.endswith(".csv")
    screenshot(browser, "approved")
