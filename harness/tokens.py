"""API tokens for tests: issue one into a hash file, and remember it so no log of the run may show it."""

from __future__ import annotations

from pathlib import Path

ISSUED_TOKENS: list[str] = []  # every token a test made: none may appear in any log of the run (tests/conftest.py)


def issue_token(token_file: Path, name: str) -> str:
    """A new token named `name` in `token_file` (serving/tokens.py), remembered for the run's log check."""
    from serving import tokens  # the serving half, only for the tests that use tokens

    token = tokens.add(token_file, name)
    ISSUED_TOKENS.append(token)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
