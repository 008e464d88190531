"""The token file and its command line (serving/tokens.py), run as `make up` runs it: by path, standard library only."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from harness import ROOT
from harness.tokens import ISSUED_TOKENS
from serving import tokens

SCRIPT = ROOT / "serving" / "tokens.py"


def cli(*args: str) -> subprocess.CompletedProcess:
    """python -S: no site-packages at all, so the script works with a bare python3 (make up)."""
    return subprocess.run([sys.executable, "-S", str(SCRIPT), *args], capture_output=True, text=True, timeout=30)


def test_add_prints_the_token_once_and_keeps_only_its_hash(tmp_path):
    file = tmp_path / "new-folder" / "tokens"
    added = cli("add", "alice", "--file", str(file))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    ISSUED_TOKENS.append(token)
    assert token.startswith("fst_") and len(token) == 4 + 43  # 32 random bytes, base64url without padding
    assert "shown only now" in added.stderr and token not in added.stderr
    text = file.read_text()
    assert token not in text and f"{hashlib.sha256(token.encode()).hexdigest()}  alice\n" in text
    assert (file.stat().st_mode & 0o777) == 0o644  # hashes only: readable by the api container's user
    assert tokens.read(file) == {tokens.digest(token): "alice"}


def test_add_again_replaces_remove_takes_away_list_names(tmp_path):
    file = tmp_path / "tokens"
    first = cli("add", "ci", "--file", str(file)).stdout.strip()
    second = cli("add", "ci", "--file", str(file)).stdout.strip()
    cli("add", "prometheus", "--file", str(file))
    ISSUED_TOKENS.extend([first, second])
    assert first != second and tokens.read(file) == {tokens.digest(second): "ci", **_named(file, "prometheus")}
    assert cli("list", "--file", str(file)).stdout.split() == ["ci", "prometheus"]
    assert cli("remove", "ci", "--file", str(file)).returncode == 0
    assert cli("list", "--file", str(file)).stdout.split() == ["prometheus"]


def _named(file, name):
    return {value: owner for value, owner in tokens.read(file).items() if owner == name}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["remove", "nobody"], "has no token named 'nobody'"),
        (["add", "two words"], "a token name is"),
        (["add", ".dot-first"], "a token name is"),
        (["list"], "there is no token file"),
        (["add"], "add needs a NAME"),
    ],
)
def test_mistakes_get_one_line_naming_the_remedy(tmp_path, args, words):
    file = tmp_path / "tokens"
    if args[0] == "remove":
        cli("add", "somebody", "--file", str(file))
    finished = cli(*args, "--file", str(file if args[0] != "list" else tmp_path / "missing"))
    assert finished.returncode != 0 and "Traceback" not in finished.stderr
    assert words in finished.stderr.strip().splitlines()[-1]


def test_parse_skips_comments_and_reports_bad_lines_by_number():
    digest = "ab" * 32
    hashes, bad = tokens.parse(f"# comment\n\n{digest}  alice\nfst_pasted-by-mistake\n{digest[:-1]}  short\n")
    assert hashes == {bytes.fromhex(digest): "alice"} and bad == [4, 5]
