"""Browser tests: Debian's Chromium, driven by Playwright, against a real `main.py serve` process.

Playwright never downloads a browser here (the Makefile sets PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD);
we launch /usr/bin/chromium. Without it the tests skip locally and fail under CI=true.
Screenshots go to tests/artifacts/ (git-ignored): look at them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.backends import make_config

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}

# Runs in every page before its own scripts: CSP violations become console errors the watcher sees.
REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """A real Pinhole (Granian, embedded queue worker) on a free port; yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser-site")
    config = make_config(
        tmp,
        queue={"embedded_workers": 1},
        # One IP (127.0.0.1) signs up and logs in many times across these tests.
        limits={"signup_per_ip": 1000, "login_per_ip": 1000, "login_per_account": 1000},
        log={"level": "warning", "format": "text"},
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "serve", "--config", str(config.source), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"main.py serve exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"main.py serve did not answer /healthz within 30 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Whatever the server logged at warning or above is worth reading when a test failed.
    (ARTIFACTS / "server.log").parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "server.log").write_bytes(log_path.read_bytes())


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What went wrong in the browser: console errors, CSP violations, uncaught errors, 5xx."""

    problems: list[str] = field(default_factory=list)
    # Pages we navigated to that answered 4xx on purpose (404 page, wrong password): Chromium logs
    # "Failed to load resource" for them, which is not a fault of the page.
    error_documents: set[str] = field(default_factory=set)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught error on {page.url}: {exc}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _response(self, response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.url}")
        elif response.status >= 400 and response.request.is_navigation_request():
            self.error_documents.add(response.url)
        elif response.status >= 400:
            self.problems.append(f"{response.status} for a resource: {response.url}")

    def _failed(self, request) -> None:
        # ERR_ABORTED is a load cut short by the next navigation (a form submitted), not a fault.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        url = msg.location.get("url", "")
        if msg.text.startswith("Failed to load resource") and url in self.error_documents:
            return
        self.problems.append(f"console error at {url}: {msg.text}")


def _open(browser, base_url: str, **options):
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(10_000)
    context.add_init_script(REPORT_CSP)
    watch = Watch()
    context.on("page", watch.attach)
    return context, watch


@pytest.fixture
def open_context(browser, server):
    """`open_context(**options)` -> (context, watch); after the test, every watch must be clean."""
    opened = []

    def make(**options):
        context, watch = _open(browser, server, **options)
        opened.append((context, watch))
        return context, watch

    yield make
    problems = [p for _, watch in opened for p in watch.problems]
    for context, _ in opened:
        context.close()
    if problems:
        pytest.fail("browser reported problems:\n" + "\n".join(problems))


@pytest.fixture
def phone(open_context):
    """A page in a phone-sized, touch, light-mode browser context."""
    context, _ = open_context(**PHONE)
    return context.new_page()


def shoot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
