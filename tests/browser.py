"""A real headless Chromium, driven through Debian's chromedriver with Selenium, for console tests.

Chromium and its driver are installed with apt-get when missing; where that is impossible the
tests skip with the reason, except under CI=true, where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

PACKAGES = ["chromium", "chromium-driver"]


def ensure_chromium() -> str | None:
    """None when chromium and chromedriver are usable (installing them if needed), else why not."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "Chromium is not installed and cannot be installed here: sudo apt-get install chromium chromium-driver"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0 and cmd[1] == "install":
            return f"installing {' '.join(PACKAGES)} failed: {r.stderr.strip()[-300:]}"
    return None if shutil.which("chromium") and shutil.which("chromedriver") else "chromium installed but not found"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    why = ensure_chromium()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required in CI: {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
