"""API tokens and the file that holds them as SHA-256 hashes, one `<hex digest>  <name>` a line (sha256sum's layout).

    python -m serving.tokens add NAME [--file secrets/tokens]     # prints the new token, once; stores its hash
    python -m serving.tokens remove NAME | list                    # a running server notices within a second

Standard library only: `python3 serving/tokens.py ...` works without the project installed (make up runs it so).
A token is 256 random bits, so one fast hash is enough to keep a leaked file from yielding tokens (passwords
need slow, salted hashes because people choose guessable ones; nobody can guess these).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path

PREFIX = "fst_"  # "fashion-softmax token": recognisable by secret scanners and by people
DEFAULT_FILE = Path("secrets/api/tokens")  # what docker-compose.yml mounts into the api replicas
LINE = re.compile(r"([0-9a-f]{64})\s+(\S+)")  # a hex SHA-256 digest, then the token's name
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # names go into logs: no spaces, no secrets' characters


class TokenFileError(Exception):
    """The token file cannot be used as it is; the message names the file and the remedy."""


def new_token() -> str:
    """A fresh token: the prefix and 32 random bytes, URL-safe base64 (a valid RFC 6750 b64token)."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """What the file keeps of a token: its SHA-256 (32 bytes)."""
    return hashlib.sha256(token.encode("ascii")).digest()


def parse(text: str) -> tuple[dict[bytes, str], list[int]]:
    """({digest: name}, numbers of the lines that are not `<hex>  <name>`); blank and `#` lines are skipped.

    Bad lines are reported by number only: one may be a token pasted by mistake, never to be printed.
    """
    hashes, bad = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.fullmatch(line)
        if match is None:
            bad.append(number)
        else:
            hashes[bytes.fromhex(match[1])] = match[2]
    return hashes, bad


def read(path: Path) -> dict[bytes, str]:
    """{digest: name} of a token file, or TokenFileError naming what is wrong with it."""
    try:
        hashes, bad = parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise TokenFileError(f"there is no token file {path}: make one with `python -m serving.tokens add NAME "
                             f"--file {path}` (make up does, for the compose stack)") from error  # fmt: skip
    except (OSError, UnicodeDecodeError) as error:
        raise TokenFileError(f"cannot read the token file {path}: {error}") from error
    if bad:
        lines = ", ".join(map(str, bad))
        raise TokenFileError(f"{path}: line(s) {lines} are not `<sha256 hex>  <name>` (python -m serving.tokens)")
    return hashes


def _write(path: Path, hashes: dict[bytes, str]) -> None:
    """The whole file, written beside it and renamed into place: a reader never sees half of it."""
    if not path.parent.exists():  # made here: readable by the api container's user whatever the umask
        path.parent.mkdir(parents=True)
        path.parent.chmod(0o755)
    text = "# API tokens of fashion-softmax: `<sha256 of the token>  <name>`, made by python -m serving.tokens\n"
    text += "".join(f"{value.hex()}  {name}\n" for value, name in hashes.items())
    handle, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(staged, 0o644)  # hashes only; the api container's unprivileged user must read them
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def add(path: Path, name: str) -> str:
    """A new token named `name` (replacing one of that name): its hash goes into the file, the token is returned."""
    if not NAME.fullmatch(name):
        raise TokenFileError(f"a token name is 1-64 letters, digits or ._@- (a letter or digit first), not {name!r}")
    hashes = read(path) if path.exists() else {}
    token = new_token()
    hashes = {value: owner for value, owner in hashes.items() if owner != name} | {digest(token): name}
    _write(path, hashes)
    return token


def remove(path: Path, name: str) -> None:
    hashes = read(path)
    if name not in hashes.values():
        raise TokenFileError(f"{path} has no token named {name!r} (python -m serving.tokens list --file {path})")
    _write(path, {value: owner for value, owner in hashes.items() if owner != name})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["add", "remove", "list"])
    parser.add_argument("name", nargs="?", help="the token's name (add, remove): who or what uses it")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help=f"the token file (default {DEFAULT_FILE})")
    args = parser.parse_args(argv)
    if args.command != "list" and not args.name:
        parser.error(f"{args.command} needs a NAME")
    try:
        if args.command == "add":
            token = add(args.file, args.name)
            print(token)  # alone on stdout, for scripts: TOKEN=$(python -m serving.tokens add ci)
            print(f"tokens: added {args.name!r} to {args.file}; the token above is shown only now", file=sys.stderr)
        elif args.command == "remove":
            remove(args.file, args.name)
            print(f"tokens: removed {args.name!r} from {args.file}", file=sys.stderr)
        else:
            print("\n".join(sorted(read(args.file).values())))
    except TokenFileError as error:
        sys.exit(f"tokens: {error}")


if __name__ == "__main__":
    main()
