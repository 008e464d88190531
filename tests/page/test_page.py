"""The page at / and Swagger UI at /docs, used the way a person uses them, in headless Chromium against the
production server: upload real test images, draw, send a file that is not an image, read the API's docs.
Screenshots and the time to the first answer land in tests/output/."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import requests
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.images import GARMENTS, encode, from_data_url
from harness.tokens import bearer, issue_token
from serving import tokens
from serving.openapi import document
from training.data import LABELS

WAIT = 30  # seconds, the most any step may take
FINISHED = ".card[data-state=done], .card[data-state=error]"
NOT_A_GARMENT = "This does not look like a Fashion-MNIST garment"  # a flagged picture's card says it (page.js)


def shown_answer(card) -> str:
    """What the card gives as the answer: a label, or the flagged picture's sentence with its closest label."""
    label = card.find_element(By.CSS_SELECTOR, ".label").text
    return label if label != NOT_A_GARMENT else f"{label}; {card.find_element(By.CSS_SELECTOR, '.closest').text}"


def expected_answer(prediction: dict) -> str:
    if prediction["in_distribution"]:
        return prediction["label"]
    return f"{NOT_A_GARMENT}; Closest label: {prediction['label']}"


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call (Network.requestWillBeSent in the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for_cards(driver, count: int) -> list:
    WebDriverWait(driver, WAIT, poll_frequency=0.01).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, FINISHED)) >= count
    )
    return driver.find_elements(By.CSS_SELECTOR, ".card")


def open_page(driver, url: str) -> None:
    driver.get(url + "/")
    WebDriverWait(driver, WAIT).until(lambda d: "version" in d.find_element(By.ID, "model").text)


def decoded(data_url: str) -> np.ndarray:
    return np.asarray(from_data_url(data_url))


def api_answer(url: str, path) -> dict:
    """What POST /predict answers for this file, sent the way the page sends it (one multipart file)."""
    with open(path, "rb") as file:
        sent = {"image": (path.name, file)}
        return requests.post(f"{url}/predict?return_input=true", files=sent, timeout=WAIT).json()


def screenshot(driver, path) -> None:
    """The results (or the top of /docs) in view, saved as a PNG."""
    driver.execute_script("document.getElementById('results-title')?.scrollIntoView()")
    driver.save_screenshot(str(path))


def severe_console_messages(driver) -> list[str]:
    """Errors in the console, except the 404s of the artifact's optional pictures."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/artifacts/" not in entry["message"]
    ]


@pytest.mark.dataset
def test_real_test_images_get_the_apis_labels(browser, real_server, real_run, tmp_path, output_dir):
    """One real test image of each class, uploaded at once; each card shows what /predict answers for its file."""
    images, labels = real_run.test.images.numpy(), real_run.test.labels.numpy()
    first_of_class = [int(np.flatnonzero(labels == k)[0]) for k in range(10)]
    paths = []
    for index in first_of_class:
        paths.append(tmp_path / f"test-{index:05d}-{LABELS[labels[index]].replace('/', '-')}.png")
        paths[-1].write_bytes(encode(images[index], "PNG"))
    open_page(browser, real_server)
    metadata = requests.get(f"{real_server}/metadata", timeout=WAIT).json()
    shown = browser.find_element(By.ID, "model").text
    assert metadata["version"] in shown and f"{100 * metadata['metrics']['test_accuracy']:.1f}%" in shown

    started = time.perf_counter()
    browser.find_element(By.CSS_SELECTOR, "input[type=file][multiple]").send_keys("\n".join(map(str, paths)))
    wait_for_cards(browser, 1)
    first_answer = time.perf_counter() - started
    cards = wait_for_cards(browser, len(paths))
    all_answers = time.perf_counter() - started

    assert [card.find_element(By.CSS_SELECTOR, ".name").text for card in cards] == [p.name for p in paths]
    shown = [shown_answer(card) for card in cards]
    answers = [api_answer(real_server, path)["predictions"][0] for path in paths]
    assert [text[: len(expected_answer(answer))] for text, answer in zip(shown, answers, strict=True)] == [
        expected_answer(answer) for answer in answers
    ]  # a real garment flagged (about 1 in 20) shows the sentence and its closest label
    right = sum(answer["label"] == LABELS[labels[index]] for answer, index in zip(answers, first_of_class, strict=True))
    assert right >= 7, f"{right} of 10 right: {shown}"  # the model is about 80% accurate
    for card, answer in zip(cards, answers, strict=True):
        seen = card.find_element(By.CSS_SELECTOR, "img.input")
        np.testing.assert_array_equal(decoded(seen.get_attribute("src")), decoded(answer["input_png"]))
        assert seen.value_of_css_property("image-rendering") == "pixelated" and seen.size["width"] >= 112
        assert len(card.find_elements(By.CSS_SELECTOR, ".bars tbody tr")) == 10
    status = browser.find_element(By.ID, "status")
    assert status.get_attribute("aria-live") == "polite" and "Classified 10" in status.text

    page_marks = browser.execute_script(
        "const at = (name) => performance.getEntriesByName(name)[0].startTime;"
        "return {first: at('fs:first-result') - at('fs:submitted'), all: at('fs:batch-done') - at('fs:submitted')};"
    )
    timing = {
        "files": len(paths),
        "send_keys_to_first_answer_ms": round(first_answer * 1000, 1),
        "send_keys_to_all_answers_ms": round(all_answers * 1000, 1),
        "page_submitted_to_first_answer_drawn_ms": round(page_marks["first"], 1),
        "page_submitted_to_all_answers_drawn_ms": round(page_marks["all"], 1),
    }
    (output_dir / "page_timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(f"time to the first answer: {timing}")
    screenshot(browser, output_dir / "page-answers.png")
    assert severe_console_messages(browser) == []


def test_a_drawing_is_classified(browser, server, output_dir):
    open_page(browser, server)
    browser.find_element(By.ID, "classify").click()
    assert "Draw a garment first" in browser.find_element(By.ID, "status").text
    canvas = browser.find_element(By.ID, "canvas")
    strokes = ActionChains(browser)
    for y in (-90, -60, -30, 0, 30):  # a few horizontal strokes, offsets from the canvas' centre
        strokes.move_to_element_with_offset(canvas, -100, y).click_and_hold()
        for _ in range(10):
            strokes.move_by_offset(20, 0)
        strokes.release()
    strokes.perform()
    browser.find_element(By.ID, "classify").click()
    (card,) = wait_for_cards(browser, 1)
    assert card.get_attribute("data-state") == "done"
    answer = shown_answer(card)  # strokes may or may not look like the small model's garments
    assert answer in LABELS or any(answer.startswith(f"{NOT_A_GARMENT}; Closest label: {label} (") for label in LABELS)
    rows = card.find_elements(By.CSS_SELECTOR, ".bars tbody tr")
    assert [row.find_element(By.TAG_NAME, "th").text for row in rows] == list(LABELS)
    widths = [row.find_element(By.CSS_SELECTOR, ".bar").size["width"] for row in rows]
    assert max(widths) > 10 * min(widths)  # the bars are drawn to scale
    seen = decoded(card.find_element(By.CSS_SELECTOR, "img.input").get_attribute("src"))
    assert seen.shape == (28, 28) and (seen > 128).sum() > 50  # the strokes reached the model, light on black
    screenshot(browser, output_dir / "page-drawing.png")
    browser.find_element(By.ID, "clear").click()
    blank = browser.execute_script("return document.getElementById('canvas').toDataURL()")
    assert decoded(blank)[..., :3].max() == 0  # RGBA: black everywhere again


def test_a_picture_that_is_not_a_garment_is_not_answered_with_a_label(browser, server, tmp_path, output_dir):
    """Uniform noise beside a garment: the noise's card says it is not a garment, its closest label shown as that
    only (with the score and the threshold), while the garment's card answers with its label as usual."""
    noise, garment = tmp_path / "noise.png", tmp_path / "dress.png"
    noise.write_bytes(encode(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8), "PNG"))
    garment.write_bytes(encode(GARMENTS[3], "PNG"))
    flagged, accepted = (api_answer(server, path) for path in (noise, garment))
    assert flagged["predictions"][0]["in_distribution"] is False and accepted["predictions"][0]["in_distribution"]
    open_page(browser, server)
    browser.find_element(By.ID, "files").send_keys(f"{noise}\n{garment}")
    noise_card, garment_card = wait_for_cards(browser, 2)

    prediction, threshold = flagged["predictions"][0], flagged["model"]["novelty_threshold"]
    assert noise_card.get_attribute("data-in-distribution") == "false"
    assert noise_card.find_element(By.CSS_SELECTOR, ".label").text == NOT_A_GARMENT
    assert noise_card.find_element(By.CSS_SELECTOR, ".probability").text == ""  # no confidence for a non-answer
    closest = noise_card.find_element(By.CSS_SELECTOR, ".closest").text
    assert closest.startswith(f"Closest label: {prediction['label']} (") and "not an answer" in closest
    assert str(prediction["novelty"]) in closest and str(threshold) in closest
    rows = noise_card.find_elements(By.CSS_SELECTOR, ".bars tbody tr")
    assert [row.get_attribute("class") for row in rows].count("winner") == 0  # no bar is drawn as the answer
    (row,) = [row for row in rows if row.get_attribute("class") == "closest"]
    assert row.find_element(By.TAG_NAME, "th").text == prediction["label"]

    assert garment_card.get_attribute("data-in-distribution") == "true"
    assert garment_card.find_element(By.CSS_SELECTOR, ".label").text == accepted["predictions"][0]["label"] == "Dress"
    assert not garment_card.find_element(By.CSS_SELECTOR, ".closest").is_displayed()
    assert "Classified 2: not a garment, Dress." in browser.find_element(By.ID, "status").text
    screenshot(browser, output_dir / "page-not-a-garment.png")


def test_files_the_api_refuses_show_its_message(browser, server, tmp_path, output_dir):
    note = tmp_path / "note.txt"
    note.write_text("not an image")
    huge = tmp_path / "huge.png"  # 7000 x 6000 black pixels: 40 KB of PNG, over the 40 megapixel limit
    huge.write_bytes(encode(Image.new("L", (7000, 6000)), "PNG", optimize=True))
    open_page(browser, server)
    browser.find_element(By.ID, "files").send_keys(f"{note}\n{huge}")
    cards = wait_for_cards(browser, 2)
    for card, path, status in zip(cards, (note, huge), (400, 413), strict=True):
        answer = api_answer(server, path)
        assert card.get_attribute("data-state") == "error"
        shown = card.find_element(By.CSS_SELECTOR, ".error").text
        assert answer["error"]["message"] in shown and f"HTTP {status}" in shown
    assert "could not be classified" in browser.find_element(By.ID, "status").text
    screenshot(browser, output_dir / "page-error.png")


def test_swagger_ui_renders_every_documented_route(browser, server, output_dir):
    browser.get(server + "/docs")
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    rendered = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    paths = {element.get_attribute("data-path") for element in rendered}
    assert {"/predict", "/v2/models/{name}/infer", "/"} <= paths
    assert paths == set(document()["paths"])
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")  # Swagger UI's own complaints
    assert document()["info"]["title"] in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    screenshot(browser, output_dir / "docs.png")
    assert severe_console_messages(browser) == []


def test_no_request_leaves_the_service(browser, server, tmp_path):
    path = tmp_path / "garment.png"
    path.write_bytes(encode(np.pad(np.full((20, 12), 200, np.uint8), ((4, 4), (8, 8))), "PNG"))
    open_page(browser, server)
    browser.find_element(By.ID, "files").send_keys(str(path))
    wait_for_cards(browser, 1)
    browser.get(server + "/docs")
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    urls = requested_urls(browser)
    for needed in ("/", "/static/page.js", "/static/page.css", "/metadata", "/predict?return_input=true",
                   "/docs", "/docs/swagger-ui-bundle.js", "/openapi.json"):  # fmt: skip
        assert server + needed in urls, f"{needed} was not requested: {urls}"
    leaving = [url for url in urls if not url.startswith((server + "/", "data:", "blob:"))]
    assert leaving == []


def test_at_phone_width_nothing_scrolls_sideways(browser, server, tmp_path, output_dir):
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    )
    path = tmp_path / "a-file-with-a-long-name-that-could-push-the-card-wider-than-a-phone.png"
    path.write_bytes(encode(np.full((28, 28), 90, np.uint8), "PNG"))
    open_page(browser, server)
    browser.find_element(By.ID, "files").send_keys(str(path))
    wait_for_cards(browser, 1)
    width, scroll_width = browser.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert width == 390 and scroll_width <= width
    canvas = browser.find_element(By.ID, "canvas")
    assert canvas.size["width"] <= width
    screenshot(browser, output_dir / "page-phone.png")


def test_every_control_is_labelled_and_reachable_by_keyboard(browser, server):
    open_page(browser, server)
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input, button, canvas, a')]"
        ".filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())"
        ".map((e) => e.outerHTML)"
    )
    assert unlabelled == []
    reached = []
    for _ in range(6):  # Tab through the page: the three links, the file input, the two buttons
        ActionChains(browser).send_keys("\ue004").perform()  # Keys.TAB
        reached.append(browser.execute_script("return document.activeElement.id || document.activeElement.href"))
        outline = browser.switch_to.active_element.value_of_css_property("outline-style")
        assert outline != "none", f"no visible focus on {reached[-1]}"
    links = [f"{server}/{path}" for path in ("docs", "openapi.json", "metadata")]
    assert reached == [*links, "files", "classify", "clear"]


def submit_token(driver, token: str) -> None:
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "token-form").is_displayed())
    field = driver.find_element(By.ID, "token")
    assert field.get_attribute("type") == "password" and driver.switch_to.active_element == field
    field.send_keys(token + "\n")


def test_with_tokens_the_page_asks_for_one_and_keeps_it_for_the_tab_only(browser, secured_server, tmp_path):
    url, _, token = secured_server
    browser.get(url + "/")
    submit_token(browser, "fst_" + "x" * 43)  # a wrong one first
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "token-refused").is_displayed())
    assert "did not accept" in browser.find_element(By.ID, "token-refused").text
    submit_token(browser, token)
    WebDriverWait(browser, WAIT).until(lambda d: "version" in d.find_element(By.ID, "model").text)
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, ".pictures figure img").size["width"])
    assert browser.find_element(By.CSS_SELECTOR, ".pictures img").get_attribute("src").startswith("blob:")

    path = tmp_path / "garment.png"
    path.write_bytes(encode(np.pad(np.full((20, 12), 200, np.uint8), ((4, 4), (8, 8))), "PNG"))
    browser.find_element(By.ID, "files").send_keys(str(path))
    (card,) = wait_for_cards(browser, 1)
    assert card.get_attribute("data-state") == "done"

    stored = browser.execute_script("return [sessionStorage.length, localStorage.length, document.cookie]")
    assert stored == [1, 0, ""]  # this tab's session only: no localStorage, no cookie
    browser.refresh()  # the same tab: the token is still there, nothing is asked
    WebDriverWait(browser, WAIT).until(lambda d: "version" in d.find_element(By.ID, "model").text)
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    urls = requested_urls(browser)
    assert urls and not [address for address in urls if token in address]  # never in a URL
    assert not [entry for entry in browser.get_log("browser") if token in entry["message"]]  # nor in the console

    browser.switch_to.new_window("tab")  # another tab has its own session: asked again
    browser.get(url + "/")
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "token-form").is_displayed())
    assert not browser.find_element(By.ID, "token-refused").is_displayed()


def test_a_token_revoked_while_the_page_is_open_is_asked_for_again(browser, secured_server, tmp_path):
    url, token_file, token = secured_server
    revocable = issue_token(token_file, "revocable")

    def until_metadata_answers(status: int) -> None:  # the server has read the changed file
        deadline = time.monotonic() + 10
        while requests.get(f"{url}/metadata", headers=bearer(revocable), timeout=5).status_code != status:
            assert time.monotonic() < deadline, f"/metadata does not answer {status} with the token after 10 s"
            time.sleep(0.1)

    until_metadata_answers(200)
    browser.get(url + "/")
    submit_token(browser, revocable)
    WebDriverWait(browser, WAIT).until(lambda d: "version" in d.find_element(By.ID, "model").text)
    tokens.remove(token_file, "revocable")
    until_metadata_answers(401)
    path = tmp_path / "garment.png"
    path.write_bytes(encode(np.pad(np.full((20, 12), 200, np.uint8), ((4, 4), (8, 8))), "PNG"))
    browser.find_element(By.ID, "files").send_keys(str(path))
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "token-refused").is_displayed())
    assert browser.find_element(By.CSS_SELECTOR, ".card").get_attribute("data-state") == "pending"  # waiting
    submit_token(browser, token)
    (card,) = wait_for_cards(browser, 1)  # the refused request, sent again with the new token
    assert card.get_attribute("data-state") == "done"
