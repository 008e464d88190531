"""The lock files (requirements/*.txt, written by `make lock`): complete, hashed, consistent with pyproject.toml and
with each other, and this environment is exactly the development lock (what a clean `make install` gives)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"dev": ["train", "serve", "dev", "sbom"], "serve": ["serve"], "train": ["train"], "sbom": ["sbom"]}
PYTHON_311 = {"python_version": "3.11", "python_full_version": "3.11.0"}  # the images' Python
REMEDY = "run `make lock` (then `make install`)"


def pins(lock: str, environment: dict | None = None) -> dict[str, str]:
    """{name: version} of the pins that apply to `environment` (markers; this interpreter's, updated by it)."""
    found = {}
    for requirement in entries(lock):
        if requirement.marker is None or requirement.marker.evaluate(environment):
            found[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return found


def entries(lock: str) -> list[Requirement]:
    text = (ROOT / "requirements" / f"{lock}.txt").read_text()
    return [Requirement(line.rstrip(" \\")) for line in text.splitlines() if line[:1].isalnum()]


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_exact_and_hashed(lock):
    """pip --require-hashes refuses a lock that lacks either; this says which entry, before an install does."""
    lines = (ROOT / "requirements" / f"{lock}.txt").read_text().splitlines()
    for number, line in enumerate(lines):
        if line[:1].isalnum():
            assert str(Requirement(line.rstrip(" \\")).specifier).startswith("=="), line
            assert lines[number + 1].startswith("    --hash=sha256:"), f"{line}: no hash ({REMEDY})"


@pytest.mark.parametrize(("lock", "groups"), LOCKS.items())
def test_each_lock_satisfies_its_groups_of_pyproject(lock, groups):
    """A dependency added to pyproject.toml without `make lock` is caught here, by name."""
    for environment in (None, PYTHON_311):
        pinned = pins(lock, environment)
        for group in groups:
            for line in extras()[group]:
                wanted = Requirement(line)
                if wanted.marker is not None and not wanted.marker.evaluate(environment):
                    continue
                name = canonicalize_name(wanted.name)
                assert name in pinned, f"{wanted} ({group}) is not in requirements/{lock}.txt: {REMEDY}"
                assert wanted.specifier.contains(pinned[name], prereleases=True), (
                    f"requirements/{lock}.txt pins {name}=={pinned[name]}, outside {wanted} ({group}): {REMEDY}"
                )


@pytest.mark.parametrize("lock", ["serve", "train", "sbom"])
def test_the_images_locks_are_the_development_locks_versions(lock):
    """The images run the versions CI tested: each of their pins is the development lock's."""
    for environment in (None, PYTHON_311):
        development = pins("dev", environment)
        for name, version in pins(lock, environment).items():
            assert development.get(name) == version, f"{name}: {version} in {lock}.txt, {development.get(name)} in dev"


def test_this_environment_is_exactly_the_development_lock():
    """What `make install` made here (a fresh .venv under CI) is the lock, `pip freeze --all` for each pin."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    installed = {canonicalize_name(name): version for name, _, version in (line.partition("==") for line in frozen)}
    locked = pins("dev")
    differences = {name: (installed.get(name), locked.get(name)) for name in installed.keys() | locked.keys()
                   if installed.get(name) != locked.get(name)}  # fmt: skip
    assert differences == {}, f"(installed, locked) where they differ: {differences}; rm -rf .venv && make install"
