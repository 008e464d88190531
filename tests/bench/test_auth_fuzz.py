"""bench/auth_fuzz.py, the Authorization fuzzing of `make reliability`: its headers are never the right ones, it
passes against the real server started with tokens, and it fails against one that lets everybody in."""

from __future__ import annotations

import random

import pytest

from bench import auth_fuzz
from harness.server import ProductionServer
from harness.tokens import ISSUED_TOKENS
from serving import tokens


@pytest.fixture(scope="module")
def secured(model_dir, tmp_path_factory):
    with ProductionServer(model_dir, tmp_path_factory.mktemp("secured") / "server.log", with_token=True) as server:
        ISSUED_TOKENS.append(server.auth["Authorization"].removeprefix("Bearer "))
        yield server


def test_the_generated_headers_are_all_wrong_and_of_every_kind():
    token, rng = tokens.new_token(), random.Random(1)
    generated = [auth_fuzz.malformed(token, rng) for _ in range(3000)]
    assert not any(auth_fuzz.is_valid(values, token) for values in generated)
    assert auth_fuzz.is_valid([f"bEaReR  {token}".encode()], token)  # the guard knows a right one
    assert sum(len(values) == 2 for values in generated) > 100  # the header twice
    assert sum(any(byte >= 0x80 for value in values for byte in value) for values in generated) > 100
    assert sum(f"Bearer {token}".startswith(values[0].decode("latin-1")) for values in generated) > 100  # cut short


def test_against_the_server_with_tokens_every_protected_answer_is_401(secured):
    result = auth_fuzz.run(secured, budget_s=120, target=400)
    assert result["requests"] == 400 and result["protected_requests"] > 300
    assert (result["not_401"], result["open_not_200"], result["server_5xx"]) == (0, 0, 0), result
    assert result["controls"] >= 4 and result["controls_not_200"] == 0


def test_against_a_server_without_tokens_it_fails(model_dir, tmp_path):
    with ProductionServer(model_dir, tmp_path / "server.log") as open_server:
        open_server.auth = {"Authorization": f"Bearer {tokens.new_token()}"}  # sent, and ignored by the server
        result = auth_fuzz.run(open_server, budget_s=60, target=100)
    assert result["not_401"] == result["protected_requests"] > 50
