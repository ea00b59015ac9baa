"""A screenshot of the web UI after a Generate click, for the README (docs/ui.png).

    python3 docs/screenshot.py --model builtin --out docs/ui.png

Serves the page on 127.0.0.1 (a free port), opens it in headless Chromium through selenium
(Debian's chromium + chromium-driver), fills in a prompt, a tempo, a key and drums, clicks
Generate, waits for the player and images, and saves the whole page as a PNG. Prints the timings
and what was asked.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if binary is None:
        sys.exit("screenshot: chromium not found; apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def _fill_and_generate(browser, args: argparse.Namespace) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea"))).send_keys(args.prompt)
    if args.bpm is not None:
        browser.find_element(By.XPATH, "//label[.//span[text()='set tempo']]//input").click()
        number = browser.find_element(By.XPATH, "//div[contains(@class,'block')][.//span[text()='tempo (bpm)']]"
                                                "//input[@type='number']")
        number.send_keys(Keys.CONTROL, "a")
        number.send_keys(f"{args.bpm:g}", Keys.TAB)
    if args.key:
        field = browser.find_element(By.CSS_SELECTOR, "input[aria-label='key']")
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(args.key)
        wait.until(ready.element_to_be_clickable((By.XPATH, f"//li[@aria-label='{args.key}']"))).click()
    if args.drums:
        browser.find_element(By.CSS_SELECTOR, f"label[data-testid='{args.drums}-radio-label']").click()
    steps = browser.find_element(By.XPATH, "//div[contains(@class,'block')][.//span[text()='steps']]"
                                           "//input[@type='number']")
    steps.send_keys(Keys.CONTROL, "a")
    steps.send_keys(str(args.steps), Keys.TAB)
    browser.find_element(By.CSS_SELECTOR, "button#generate").click()
    WebDriverWait(browser, args.timeout).until(
        ready.presence_of_element_located((By.CSS_SELECTOR, "#audio-0 a[download][href$='.wav']")))
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, "#asked"), "asked:"))
    time.sleep(2)  # the waveform and the images finish drawing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="builtin", help="builtin or an exported model directory")
    parser.add_argument("--out", default="docs/ui.png", help="the PNG to write (default docs/ui.png)")
    parser.add_argument("--prompt", default="a warm electric piano groove with soft drums")
    parser.add_argument("--bpm", type=float, default=96.0)
    parser.add_argument("--key", default="A minor")
    parser.add_argument("--drums", default="on", choices=["on", "off", ""])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the generation")
    args = parser.parse_args(argv)

    from cuecraft._files import atomic_write
    from cuecraft.cli.generate import load_pipeline
    from cuecraft.ui import build_app, launch

    started = time.perf_counter()
    pipe = load_pipeline(args.model)
    app = build_app(pipe)
    launch(app, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    loaded = time.perf_counter()
    browser = _browser(args.width, 1000)
    try:
        browser.get(app.local_url)
        _fill_and_generate(browser, args)
        generated = time.perf_counter()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(args.width, height + 150)  # the whole page in one shot
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1)
        with tempfile.TemporaryDirectory() as folder:
            shot = Path(folder) / "page.png"
            browser.save_screenshot(str(shot))
            data = shot.read_bytes()
        asked = browser.find_element("css selector", "#asked").text
    finally:
        browser.quit()
        app.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as handle:
        handle.write(data)
    print(f"model          {pipe.name}")
    print(f"load + serve   {loaded - started:.1f} s")
    print(f"generate       {generated - loaded:.1f} s ({args.steps} steps, in the browser)")
    print(asked)
    print(f"wrote {args.out} ({len(data) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
