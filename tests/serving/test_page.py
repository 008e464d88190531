"""GET /, /static/<name>, /docs, /docs/<name> and /artifacts/<name> through the test client: types, caching,
the security policy, 404s; every file the two HTML pages name is served. (The page in a browser: tests/page/.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from harness.images import encode
from serving.page import STATIC

PAGE_FILES = ("index.html", "page.js", "page.css")  # what a person's browser loads for GET /


class References(HTMLParser):
    """The URLs an HTML file loads or links to (src=, href=)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def references(path: str, client) -> list[str]:
    parser = References()
    parser.feed(client.get(path).get_data(as_text=True))
    return parser.urls


def test_the_page_is_small():
    total = sum((STATIC / name).stat().st_size for name in PAGE_FILES)
    print(f"page assets (HTML + JS + CSS): {total / 1024:.1f} KB")
    assert total < 100 * 1024


@pytest.mark.parametrize(
    "path, mimetype",
    [("/", "text/html"), ("/static/page.js", "text/javascript"), ("/static/page.css", "text/css"),
     ("/docs", "text/html"), ("/static/docs.js", "text/javascript")],
)  # fmt: skip
def test_page_files_have_their_type_and_are_revalidated(client, path, mimetype):
    response = client.get(path)
    assert (
        response.status_code == 200 and response.mimetype == mimetype and response.mimetype_params["charset"] == "utf-8"
    )
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_the_page_allows_no_inline_script_or_foreign_request(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "unsafe" not in policy and "http" not in policy
    html = client.get("/").get_data(as_text=True)
    assert "<script>" not in html and not re.search(r"\son\w+=", html)  # no inline script, no handler attributes


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_every_file_an_html_page_names_is_served_by_the_service(client, path):
    urls = [url for url in references(path, client) if not url.startswith("data:")]
    assert urls
    for url in urls:
        assert not re.match(r"\w+:|//", url), f"{url} leaves the service"
        target = "/" + url.removeprefix("./")  # relative to / (both pages live at the root)
        if target.startswith("/artifacts/"):
            continue  # the model's pictures: optional, tested below
        assert client.get(target).status_code == 200, target


def test_swagger_ui_files_are_served_and_cached(client):
    script = client.get("/docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"SwaggerUIBundle" in script.data
    assert script.headers["Cache-Control"] == "public, max-age=86400"
    assert client.get("/docs/swagger-ui.css").mimetype == "text/css"


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/..%2fapi.py", "/docs/index.html", "/docs/LICENSE", "/docs/",
             "/artifacts/model.onnx", "/artifacts/model.json", "/artifacts/..%2fmodel.json"],
)  # fmt: skip
def test_other_files_are_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_an_artifact_picture_is_served_when_the_model_folder_has_it(copy_model):
    from serving import create_app

    (copy_model / "weights.png").unlink(missing_ok=True)
    client = create_app({"MODEL_DIR": str(copy_model), "MODEL_RELOAD_INTERVAL": 0}).test_client()
    missing = client.get("/artifacts/weights.png")
    assert missing.status_code == 404 and "no weights.png" in missing.get_json()["error"]["message"]
    picture = encode(np.arange(28 * 280, dtype=np.uint8).reshape(28, 280), "PNG")
    (copy_model / "weights.png").write_bytes(picture)
    response = client.get("/artifacts/weights.png")
    assert response.status_code == 200 and response.mimetype == "image/png" and response.data == picture
    assert response.headers["Cache-Control"] == "no-cache"  # a reloaded model brings new pictures
