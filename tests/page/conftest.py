"""Fixtures for the page in a real browser: Debian's headless Chromium driven by Selenium, against the
production server (`python -m serving`) on 127.0.0.1. Under CI=true a missing browser fails, never skips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from harness import ROOT
from harness.ci import skip_or_fail
from harness.server import ProductionServer
from harness.tokens import issue_token

BINARIES = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))  # Debian's; .ci/run installs them
OUTPUT = ROOT / "tests" / "output"  # screenshots and timings a person can look at (git-ignored)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The production server (one worker) around the small synthetic model: its base URL."""
    with ProductionServer(model_dir, tmp_path_factory.mktemp("server") / "server.log", workers=1) as running:
        yield running.url


@pytest.fixture(scope="module")
def secured_server(model_dir, tmp_path_factory):
    """The production server started with a token file: (base URL, the file, a token in it)."""
    folder = tmp_path_factory.mktemp("secured-server")
    token = issue_token(folder / "tokens", "page")
    with ProductionServer(model_dir, folder / "server.log", workers=1, tokens_file=folder / "tokens") as running:
        yield running.url, folder / "tokens", token


@pytest.fixture(scope="module")
def real_server(real_run, tmp_path_factory):
    """The production server around the model trained on the real Fashion-MNIST (skips off CI without it)."""
    assert real_run.finished.returncode == 0, real_run.finished.stderr
    with ProductionServer(real_run.out_dir, tmp_path_factory.mktemp("server") / "server.log", workers=1) as running:
        yield running.url


@pytest.fixture
def browser():
    """Headless Chromium with its network and console logs kept; quit after the test."""
    chromium, chromedriver = (str(path) if path.exists() else shutil.which(path.name) for path in BINARIES)
    if not (chromium and chromedriver):
        skip_or_fail("chromium or chromedriver is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
