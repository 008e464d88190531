"""bench/rollback_load.py, the rollback under load of `make bench-versions`: on a copy, the trained version comes
back while clients post, and the report says when."""

from __future__ import annotations

import json

from bench.rollback_load import measure


def test_the_trained_version_comes_back_under_load_and_the_original_is_untouched(model_dir, tmp_path):
    before = (model_dir / "model.json").read_text()
    result = measure(model_dir, tmp_path, clients=4, seconds=6)
    assert (model_dir / "model.json").read_text() == before  # the copy was rolled back, not the original
    assert result["failed"] == 0 and result["requests"] > 20, result
    assert result["answers_after_the_rollback"] > 0
    assert 0 < result["first_answer_of_the_rolled_back_version_s"] <= result["last_answer_of_the_version_left_s"] + 1
    assert json.loads(json.dumps(result)) == result  # what the report writes
