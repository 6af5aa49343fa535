"""Debian's headless Chromium, driven by Selenium through Debian's chromedriver (the two come
from the same package source, so their versions match and nothing is downloaded at run time).

The browser keeps its console messages and network log, so a test can say that a page wrote
no error and that no request left the hub's address; screenshots go to var/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
OFFICE_SCREEN = (1366, 768)


class Browser:
    """One browser profile (its own cookies) on the hub at `base`."""

    def __init__(self, base: str, language: str = "zh-CN") -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",  # tests run as root in a container
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",  # no update checks, no safe-browsing lists
            "--disable-component-update",
            "--disable-sync",
            f"--lang={language}",
            f"--window-size={OFFICE_SCREEN[0]},{OFFICE_SCREEN[1]}",
        ):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.base = base
        self.requested: list[str] = []
        self.console: list[dict[str, Any]] = []

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.collect()

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text(self) -> str:
        return str(self.find("body").text)

    def fill(self, **fields: str) -> None:
        for name, value in fields.items():
            element = self.find(f"[name='{name}']")
            element.clear()
            element.send_keys(value)

    def submit(self, **fields: str) -> None:
        """Fill the fields and press the form's (first) button."""
        self.fill(**fields)
        self.click("main form button[type='submit']")

    def click(self, selector: str) -> None:
        """Click what leads to another page, and wait until that page has replaced this one."""
        page = self.find("html")
        self.find(selector).click()
        WebDriverWait(self.driver, 10).until(lambda _: _replaced(page))
        self.collect()

    def path(self) -> str:
        return str(self.driver.current_url).removeprefix(self.base)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(target))
        return target

    def collect(self) -> None:
        """Take the console messages and requested URLs logged since the last call."""
        self.console.extend(self.driver.get_log("browser"))
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])

    def errors(self) -> list[str]:
        self.collect()
        return [str(entry["message"]) for entry in self.console if entry["level"] == "SEVERE"]

    def outside(self) -> list[str]:
        """Requested URLs that are not the hub's (nor the browser's own data: URLs)."""
        self.collect()
        return [url for url in self.requested if not url.startswith((self.base, "data:"))]

    def quit(self) -> None:
        self.driver.quit()


def browsers(base: str) -> Iterator[Browser]:
    """Browsers made on demand, all closed at the end."""
    made: list[Browser] = []
    try:
        while True:
            made.append(Browser(base))
            yield made[-1]
    finally:
        for browser in made:
            browser.quit()


def _replaced(page: WebElement) -> bool:
    """Whether the element of the old page is gone. While the old document is torn down
    chromedriver may say so as "node does not belong to the document", an unknown error rather
    than a stale reference (Selenium's staleness_of lets it through, which failed a run)."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error.msg):
            return True
        raise
    return False
