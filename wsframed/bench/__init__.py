"""Benchmarks: wsframed against the code users would otherwise write.

``wsframed bench`` runs the quick set and prints markdown tables on stdout: rates,
and ratios to the limits and baselines measured in the same run; on a terminal (or
with ``--progress``) it shows its progress on stderr. ``python benchmarks/run.py``
(from a checkout) runs the full set and can draw the batch-size chart. What is
measured and why is in ``wsframed.bench.scenarios``; the plan and the runner in
``wsframed.bench.suite``; the tables in ``wsframed.bench.report``.

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

from ..cli_args import add_loop_argument, positive_int
from .report import LIMITS, markdown
from .suite import FULL, QUICK, Config, Results, run
from .workloads import WORKLOADS

SECTIONS = ("small", "bulk", "decode", "memory")
"""What ``--only`` can pick (the batch-size sweep is ``benchmarks/run.py --chart``'s)."""

__all__ = [
    "FULL",
    "QUICK",
    "Config",
    "LIMITS",
    "Results",
    "SECTIONS",
    "add_arguments",
    "config_from",
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
        "Measure wsframed on 127.0.0.1 (server and client in this process, one event "
        "loop) against the limit and the code you would write without it, all in the "
        "same run: small frames per codec against raw TCP with the plain library (or, "
        "for CBOR and JSON Lines, the codec with no I/O) and against one websockets "
        "message per item; bulk bytes against raw websockets and TCP; decoding one "
        "large frame; memory under a slow reader. Prints markdown tables of rates and "
        "ratios on stdout; progress goes to stderr on a terminal or with --progress. "
        "With --loop trio the same scenarios run on websockets.trio and trio's TCP "
        "streams, except the one that exists on asyncio only (the report names it). "
        "The quick set takes a minute or two; 'python benchmarks/run.py' from a "
        "checkout runs the full set and draws the chart."
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
    parser.add_argument(
        "--items",
        type=positive_int,
        metavar="N",
        help="small frames per transfer, for every mode (default: "
        f"{QUICK.items:,} batched, {QUICK.message_items:,} one message per item)",
    )
    parser.add_argument(
        "--codec",
        action="append",
        choices=tuple(WORKLOADS),
        dest="codecs",
        metavar="NAME",
        help="measure this small-frame workload only (repeat for several; "
        f"default: all of {', '.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        dest="sections",
        metavar="SECTION",
        help=f"run this section only (repeat for several): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time in CPU seconds of this process instead of wall-clock (steadier on a "
        "busy machine: both ends run in this process)",
    )
    add_loop_argument(parser)
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal (one line per round)",
    )


def config_from(args: argparse.Namespace) -> Config:
    """The ``Config`` that ``wsframed bench``'s options ask for."""
    config: Config = FULL if getattr(args, "full", False) else QUICK
    if getattr(args, "repeat", None):
        config = replace(config, repeat=args.repeat)
    if getattr(args, "items", None):
        config = replace(config, items=args.items, message_items=args.items)
    if getattr(args, "codecs", None):
        config = replace(config, codecs=tuple(dict.fromkeys(args.codecs)))
    if getattr(args, "cpu_time", False):
        config = replace(config, cpu_time=True)
    if getattr(args, "loop", "asyncio") != "asyncio":
        config = replace(config, loop=args.loop)
    return config


def run_command(args: argparse.Namespace) -> int:
    """Run the benchmark set chosen by ``args``; print the tables. Returns 0."""
    config = config_from(args)
    sections = tuple(getattr(args, "sections", None) or ("sweep", *SECTIONS))
    show = None
    if getattr(args, "progress", False) or sys.stderr.isatty():
        show = progress_printer(sys.stderr)
    started = time.monotonic()
    results = run(config, sections=sections, progress=show)
    if show is not None:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(f"done in {time.monotonic() - started:.0f} s\n")
    sys.stdout.write(markdown(results))
    sys.stdout.flush()
    return 0
