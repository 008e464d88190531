"""Command-line parsing shared by `python -m training` and `python -m training.rollback`: a mistake is one line.

No torch here: `python -m training.rollback` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """A user mistake: reported as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see --help)")


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse
