"""A headless chromium driven by selenium, for the results browser's tests and benchmark.

Debian's chromium and chromium-driver come through ``make install``; selenium is told where
both are, so its driver manager never reaches for a network.
"""

from pathlib import Path

from harness.tools import require


def chromium(downloads: Path | None = None, width: int = 1300, height: int = 900):
    """A selenium WebDriver of a headless chromium; downloads go to ``downloads``."""
    binary, driver = require("chromium"), require("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:
        raise RuntimeError("selenium is not installed: run `make install`") from None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    if downloads is not None:
        browser.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
    return browser


def load_seconds(browser, url: str) -> float:
    """Load ``url`` and return the seconds from navigation start to the end of the load event."""
    browser.get(url)
    timing = browser.execute_script(
        "const t=performance.getEntriesByType('navigation')[0];return [t.startTime,t.loadEventEnd]"
    )
    return (timing[1] - timing[0]) / 1000
