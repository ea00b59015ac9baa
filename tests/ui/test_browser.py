"""The served page in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

Skipped, with the reason, where selenium, chromium or chromedriver is missing.
"""

import shutil
import struct

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 1000)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        pytest.skip(f"selenium is not installed ({error}); pip install selenium")
    binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver_path = CHROMEDRIVER if shutil.which(CHROMEDRIVER) else shutil.which("chromedriver")
    if binary is None or driver_path is None:
        missing = " and ".join(name for name, found in (("chromium", binary), ("chromedriver", driver_path))
                               if found is None)
        pytest.skip(f"{missing} not found; apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as error:
        pytest.skip(f"headless chromium did not start: {error.msg}")
    yield driver
    driver.quit()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_page_generates_in_a_browser(browser, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    # Every wait polls the page's own state and returns as soon as it holds; the long limit only
    # matters on a loaded machine (one run in two failed at 40 s there), never a fixed sleep.
    wait = WebDriverWait(browser, 300, poll_frequency=0.2)
    prompt = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
    assert browser.title == "cuecraft"
    assert [tab.text for tab in browser.find_elements(By.CSS_SELECTOR, "[role=tab]")] == ["Generate", "Conditions"]
    prompt.send_keys("warm organ chords")
    wait.until(lambda _: prompt.get_attribute("value") == "warm organ chords")  # typed before the click
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button#generate"))).click()

    # the player gets the served WAV, and the measured table and the asked line appear
    link = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#audio-0 a[download][href$='.wav']")))
    assert "/gradio_api/file=" in link.get_attribute("href")
    assert browser.find_elements(By.CSS_SELECTOR, "#audio-0 audio")
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, "#asked"), "asked: prompt warm organ chords"))
    assert not browser.find_elements(By.CSS_SELECTOR, ".toast-body.error")  # no error message

    path = tmp_path / "page.png"
    assert browser.save_screenshot(str(path))
    data = path.read_bytes()
    width, height = _png_size(data)
    assert width == WINDOW[0] and WINDOW[1] - 200 <= height <= WINDOW[1]  # the viewport: the window less its bars
    assert 20_000 < len(data) < 5_000_000  # a rendered page, not a blank one
