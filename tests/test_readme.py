"""The README lists what the code also lists: the FASHION_SOFTMAX_* settings the service reads, and the make
targets (which `make help` lists too). Each side is read from its source, so a setting or target added,
renamed or removed on one side only fails here."""

from __future__ import annotations

import ast
import re
import subprocess

from harness import ROOT

PREFIX = "FASHION_SOFTMAX_"
README = (ROOT / "README.md").read_text()


def keys_looked_up(tree: ast.AST):
    """(what, key) for every `what.get("KEY")`, `what.setdefault("KEY", ...)` and `what["KEY"]` in the code."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "setdefault")
        ):
            owner, key = node.func.value, node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript):
            owner, key = node.value, node.slice
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            yield ast.unparse(owner), key.value


def settings_read_by_the_service() -> set[str]:
    """FASHION_SOFTMAX_* names serving/ reads: from the environment by name, and as app.config keys (Flask
    fills app.config from the FASHION_SOFTMAX_* variables: `from_prefixed_env`), DEFAULTS among them."""
    import serving

    found = {PREFIX + key for key in serving.DEFAULTS}
    for path in sorted((ROOT / "serving").rglob("*.py")):
        for owner, key in keys_looked_up(ast.parse(path.read_text())):
            if owner.endswith("environ") and key.startswith(PREFIX):
                found.add(key)
            elif owner.endswith("config") and key.isupper():
                found.add(PREFIX + key)
    return found


def settings_in_the_readme() -> set[str]:
    """The first column of the service's settings table: rows like | `FASHION_SOFTMAX_PORT` | `8000` | ... |"""
    return set(re.findall(rf"^\| `({PREFIX}[A-Z_]+)` \|", README, re.MULTILINE))


def test_every_setting_the_service_reads_is_in_the_readmes_table_and_no_other():
    read, documented = settings_read_by_the_service(), settings_in_the_readme()
    assert {"FASHION_SOFTMAX_PORT", "FASHION_SOFTMAX_MAX_BATCH", "FASHION_SOFTMAX_ACCESS_LOG"} <= read  # the scan
    assert read - documented == set(), "read by serving/ but not in the README's table"
    assert documented - read == set(), "in the README's table but read nowhere in serving/"


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.MULTILINE))


def test_every_make_target_is_in_make_help_and_in_the_readme():
    targets = makefile_targets()
    assert {"help", "test", "train-export", "reliability", "bench-train", "bench-serve"} <= targets
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30)
    assert set(re.findall(r"^  make (\S+)", listed.stdout, re.MULTILINE)) == targets
    (sentence,) = re.findall(r"`make help` lists every target \(([^)]*)\)", README)
    assert set(re.findall(r"`([a-z-]+)`", sentence)) == targets
