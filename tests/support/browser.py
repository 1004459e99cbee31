"""A real headless Chromium, driven through Debian's chromedriver with Selenium, for console tests.

Chromium and its driver come from tests/system-packages.sh (`make test` runs it first); nothing
is installed here. Without them the tests skip with the reason, and under CI=true they fail.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

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


def signed_in_view(driver: Any, url: str, key: str, view: str) -> Any:
    """The console in a fresh session, signed in through its form with `key`, `view` opened; the wait
    (10 s) is returned for what the test reads next."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 10)
    driver.get(f"{url}/console")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{url}/console")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    driver.find_element(By.CSS_SELECTOR, f"nav button[data-view='{view}']").click()
    return wait


def keyed_console(driver: Any, url: str, key: str) -> Any:
    """The console with `key` already in the session (as after signing in) and no language chosen yet,
    shown; the wait (10 s) is returned for what the test reads next."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 10)
    driver.get(f"{url}/console")
    driver.execute_script("localStorage.clear(); sessionStorage.setItem(arguments[0], arguments[1]);",
                          "case-exchange-gateway.key", key)
    driver.get(f"{url}/console")
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    return wait
