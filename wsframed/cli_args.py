"""argparse value types and options shared by the ``wsframed`` subcommands (one message style)."""

from __future__ import annotations

import argparse

__all__ = ["add_loop_argument", "port", "positive_int", "seconds"]

LOOPS = ("asyncio", "trio")  # what wsframed.loops.run() starts


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--loop {asyncio,trio}`` (every subcommand that runs a loop)."""
    parser.add_argument("--loop", choices=LOOPS, default="asyncio",
                        help="the event loop to run on: asyncio (the default) or trio "
                        "(needs wsframed[trio])")


def port(text: str) -> int:
    """A TCP port, 0 (pick a free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, not {value}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def seconds(text: str) -> float:
    """A finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value
