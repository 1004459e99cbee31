"""A real headless Chromium, driven through Debian's chromedriver with Selenium, for console tests.

Chromium and its driver come from tests/system-packages.sh (`make test` runs it first); nothing
is installed here. Without them the tests skip with the reason, and under CI=true they fail.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

from .required import INSTALL, unavailable


def chromium() -> Iterator[object]:
    """A headless Chromium session, quit afterwards."""
    missing = [b for b in ("chromium", "chromedriver") if not shutil.which(b)]
    if missing:
        unavailable(f"{' and '.join(missing)} not installed ({INSTALL})")
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
