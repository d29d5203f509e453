"""The page of `edge run --web` in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium), checked for what a person sees: the live image changes, an alert appears with
its snapshot, "false alarm" stores the verdict and copies the frame, moving the threshold changes
the next alerts. Skipped without chromium/chromedriver unless EDGE_REQUIRE_BROWSER=1 (CI).

EDGE_WEB_SCREENSHOT=PATH also saves a screenshot of the page there (docs/web-page.png).
"""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from web_station import TOKEN, start_station

pytest.importorskip("starlette")
selenium = pytest.importorskip("selenium")


def _browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    if os.environ.get("EDGE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; EDGE_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()


def test_a_person_watches_reviews_and_moves_the_threshold(browser, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    station = start_station(tmp_path)
    # The alert list is redrawn as alerts arrive: an element read between two redraws is stale, so
    # the wait looks again instead of failing.
    wait = WebDriverWait(browser, 15, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
    try:
        browser.get(station.url)
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        live = browser.find_element(By.ID, "live")
        # the live image arrives, then changes
        first = wait.until(
            lambda d: live.get_attribute("data-seq") not in ("0", None) and live.get_attribute("data-seq")
        )
        wait.until(lambda d: live.get_attribute("data-seq") != first)
        assert browser.execute_script("return arguments[0].naturalWidth", live) == 256
        # an alert appears with its snapshot
        item = wait.until(lambda d: _alert_with_picture(d))
        alert_id = item.get_attribute("data-id")
        # "false alarm": the verdict shows, is stored with the alert, and the frame is in train/good
        item.find_element(By.CSS_SELECTOR, "button.false-alarm").click()
        wait.until(lambda d: "stored" in d.find_element(By.ID, "message").text)
        wait.until(lambda d: _verdict_text(d, alert_id) == "false alarm")
        with sqlite3.connect(station.out / "events.db") as db:
            row = db.execute("SELECT verdict, copied FROM reviews WHERE alert_id = ?", (alert_id,)).fetchone()
        assert row[0] == "false_alarm" and (tmp_path / row[1]).is_file()
        assert any((station.out / "review" / "train" / "good").glob("*.png"))
        # the slider's rates, then a new threshold applied: the next alerts use it
        value = browser.find_element(By.ID, "threshold-value")
        value.clear()
        value.send_keys("12.6")
        assert "false alarms 98.9 % of 92 good images" in browser.find_element(By.ID, "threshold-rates").text
        browser.find_element(By.ID, "threshold-apply").click()
        wait.until(lambda d: "applied" in d.find_element(By.ID, "message").text)
        wait.until(lambda d: "> 12.6" in d.find_element(By.CSS_SELECTOR, "#alerts li.alert b").text)
        if os.environ.get("EDGE_WEB_SCREENSHOT"):
            browser.save_screenshot(os.environ["EDGE_WEB_SCREENSHOT"])
    finally:
        station.stop()


def _alert_with_picture(driver):
    from selenium.webdriver.common.by import By

    for item in driver.find_elements(By.CSS_SELECTOR, "#alerts li.alert"):
        img = item.find_element(By.CSS_SELECTOR, "img.snapshot")
        if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img):
            return item
    return None


def _verdict_text(driver, alert_id: str) -> str:
    from selenium.webdriver.common.by import By

    items = driver.find_elements(By.CSS_SELECTOR, f'#alerts li.alert[data-id="{alert_id}"] .verdict')
    return items[0].text if items else ""
