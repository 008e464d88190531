"""A bug of ours (an exception no handler expects) answers 500 in the route's JSON error format, tells the
client nothing of the bug, logs the whole traceback and is counted in /metrics."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from werkzeug.exceptions import InternalServerError

from serving import create_app


@pytest.fixture
def broken_app(model_dir):
    app = create_app({"MODEL_DIR": str(model_dir), "MODEL_RELOAD_INTERVAL": 0})

    def broken():
        raise ZeroDivisionError("a secret detail of the bug")

    app.add_url_rule("/broken", "broken", broken)
    app.add_url_rule("/v2/broken", "v2_broken", broken)
    return app


def test_a_bug_answers_500_as_json_and_logs_the_traceback(broken_app, caplog):
    client = FlaskClient(broken_app)  # the plain client: these routes are not in the OpenAPI document
    with caplog.at_level("ERROR", logger="serving"):
        native, v2 = client.get("/broken"), client.get("/v2/broken")
    assert (native.status_code, native.mimetype) == (500, "application/json")
    assert native.get_json() == {"error": {"code": "internal_error", "message": InternalServerError.description}}
    assert (v2.status_code, v2.get_json()) == (500, {"error": InternalServerError.description})
    assert "secret" not in native.get_data(as_text=True) + v2.get_data(as_text=True)
    logged = [record for record in caplog.records if record.exc_info]
    assert [record.exc_info[0] for record in logged] == [ZeroDivisionError, ZeroDivisionError]
    assert "Traceback (most recent call last)" in caplog.text and "a secret detail of the bug" in caplog.text
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'fashion_softmax_http_requests_total{method="GET",route="/broken",status="500"} 1.0' in metrics
