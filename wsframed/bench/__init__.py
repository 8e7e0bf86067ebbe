"""Benchmarks: wsframed against the code users would otherwise write.

``wsframed bench`` runs the quick set with a progress display on stderr and prints a
markdown table on stdout; ``python benchmarks/run.py`` (from a checkout) runs the
full set and can draw the batch-size chart. What is measured and why is in
``wsframed.bench.scenarios``; the plan and the runner in ``wsframed.bench.suite``;
the tables and targets in ``wsframed.bench.report``.

The suite ships in the package so that ``wsframed bench`` works from an installed
wheel; it imports nothing beyond wsframed's own dependencies (the chart needs
matplotlib, the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from ..cli_args import positive_int
from .report import checks, markdown
from .suite import FULL, QUICK, Config, Results, run

__all__ = [
    "FULL",
    "QUICK",
    "Config",
    "Results",
    "add_arguments",
    "checks",
    "markdown",
    "progress_printer",
    "run",
    "run_command",
]


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    """Return a progress callback: one rewritten line on a terminal, else plain lines."""
    start = time.monotonic()
    interactive = stream.isatty()
    state = {"round": ""}

    def show(message: str) -> None:
        elapsed = time.monotonic() - start
        if interactive:
            stream.write(f"\r\x1b[K{elapsed:5.0f}s {message}")
            stream.flush()
            return
        # Not a terminal: one line per round, so logs stay short.
        round_part = message.partition("] ")[2].partition(":")[0]
        if round_part != state["round"]:
            state["round"] = round_part
            stream.write(f"{elapsed:5.0f}s {round_part}\n")
            stream.flush()

    return show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``wsframed bench`` options to ``parser``."""
    parser.description = (
        "Measure wsframed against the alternatives on 127.0.0.1 (server and client in "
        "this process, one event loop): small frames per codec against one websockets "
        "message per item, bulk bytes against raw websockets and TCP, decoding one large "
        "frame, and memory under a slow reader. Prints a markdown table on stdout; "
        "progress goes to stderr. The quick set takes under a minute; run "
        "'python benchmarks/run.py' from a checkout for the full set and the chart."
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        metavar="N",
        help=f"rounds; each figure is the best round (default: {QUICK.repeat})",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="the full set: 100k items, 256 MiB bulk, 1 GiB slow reader (minutes)",
    )


def run_command(args: argparse.Namespace) -> int:
    """Run the benchmark set chosen by ``args``; print the table. Returns 0."""
    config: Config = FULL if getattr(args, "full", False) else QUICK
    if getattr(args, "repeat", None):
        config = replace(config, repeat=args.repeat)
    show = progress_printer(sys.stderr)
    started = time.monotonic()
    results = run(config, progress=show)
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    sys.stderr.write(f"done in {time.monotonic() - started:.0f} s\n")
    sys.stdout.write(markdown(results))
    sys.stdout.flush()
    return 0
