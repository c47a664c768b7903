"""The results browser in a real browser: Debian's chromium driven by selenium through
chromium-driver (both from ``make install``), against ``walrus-harness serve`` on real TCP."""

import subprocess
import sys
import time
import zipfile

import pytest

from harness.serve.browser import chromium
from harness.tools import missing_reason
from tests.run_support import write_store

pytest.importorskip("selenium", reason="selenium is not installed: run `make install`")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

for _tool in ("chromium", "chromedriver"):
    if reason := missing_reason(_tool):
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    paths = write_store(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--store", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "serving" in line, line
    base = line.split(" at ", 1)[1].split("/ ", 1)[0]
    yield base, paths
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = chromium(downloads)
    yield driver, downloads
    driver.quit()


def visible_verdicts(driver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    return [r.get_attribute("data-verdict") for r in rows if r.is_displayed()]


def test_the_index_loads_and_filters_by_verdict(served, browser):
    base, _ = served
    driver, _ = browser
    driver.get(base + "/")
    assert sorted(visible_verdicts(driver)) == [
        "INCOMPLETE",
        "INVALID",
        "INVALID",
        "VALID",
        "VALID",
    ]
    verdict = Select(driver.find_element(By.ID, "f-verdict"))
    verdict.select_by_value("INVALID")
    assert visible_verdicts(driver) == ["INVALID", "INVALID"]
    assert driver.find_element(By.ID, "shown").text == "2"
    verdict.select_by_value("")
    driver.find_element(By.ID, "f-text").send_keys("partition-seed1")
    assert visible_verdicts(driver) == ["INVALID"]


def test_a_run_page_shows_its_anomalies_and_plots(served, browser):
    base, paths = served
    driver, _ = browser
    driver.get(f"{base}/run/{paths['invalid']}/")
    kinds = {
        a.get_attribute("data-kind") for a in driver.find_elements(By.CSS_SELECTOR, ".anomaly")
    }
    assert "lost" in kinds
    window = driver.find_element(By.CSS_SELECTOR, ".anomaly[data-kind='lost'] svg.window")
    assert window.find_elements(By.CSS_SELECTOR, "g.op")
    images = driver.find_elements(By.TAG_NAME, "img")
    assert images
    for img in images:
        assert driver.execute_script("return arguments[0].naturalWidth", img) > 0, (
            img.get_attribute("src")
        )


def test_the_zip_downloads(served, browser):
    base, paths = served
    driver, downloads = browser
    driver.get(f"{base}/run/{paths['invalid']}/")
    driver.find_element(By.ID, "download").click()
    deadline = time.monotonic() + 30
    while not (done := [p for p in downloads.glob("*.zip")]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done, f"no zip arrived in {downloads}: {list(downloads.iterdir())}"
    names = zipfile.ZipFile(done[0]).namelist()
    assert any(n.endswith("/history.jsonl") for n in names)
    assert any(n.endswith("/results.json") for n in names)


def test_the_campaign_heat_map_links_to_runs(served, browser):
    base, paths = served
    driver, _ = browser
    driver.get(f"{base}/campaign/{paths['campaign']}/")
    cells = driver.find_elements(By.CSS_SELECTOR, "#heatmap td a")
    assert len(cells) == 2
    cells[1].click()
    assert "partition-seed1" in driver.current_url
    assert driver.find_elements(By.CSS_SELECTOR, ".anomaly")


def test_bench_serve_times_a_run_page_in_the_browser(tmp_path, capsys):
    from harness.cli import main

    assert main(["bench", "serve", "--ops", "3000", "--loads", "1", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3,000 operations" in out
    for page in ("index", "run", "timeline"):
        assert f"{page} page: load event after" in out
