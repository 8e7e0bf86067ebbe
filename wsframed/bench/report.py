"""Turn ``Results`` into markdown tables and a chart.

Every figure is the best of the run's rounds; every ratio divides two figures from the
same run. The targets are the ones of the performance issue: batching at least 5x
(``async for``) and 10x (``recv_many``) the one-message-per-item baseline, ``send()``
per item not slower than it, CBOR at least half msgpack's rate, bulk through
[`WsStream`][wsframed.WsStream] at least 0.9x raw websockets, decoding one frame in linear
time, and memory bounded under a slow reader.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from .suite import DECODE_CODECS, KiB, MiB, Results
from .workloads import WORKLOADS

__all__ = ["MEMORY_BOUND", "Check", "checks", "markdown", "versions"]

MEMORY_BOUND = 4 * MiB
"""The traced-memory bound for the slow-reader run (see docs/performance.md).

With 64 KiB messages: websockets' receive queue (``max_queue=16`` messages, plus the
frames of the socket read that crossed the high-water mark, at most 256 KiB), its
parser's buffer, the WsStream read buffer (one message), and on the sending side the
transport's write buffer (32 KiB high-water mark) and one masked frame: about 2 MiB.
The bound leaves room for allocator and bookkeeping noise; it does not grow with the
amount of data transferred.
"""

SEND_ALL_TARGET = 5.0
RECV_MANY_TARGET = 10.0
SEND_TARGET = 1.0
CBOR_TARGET = 0.5
BULK_TARGET = 0.9
DECODE_TARGET = 20.0

_SMALL_COLUMNS = (
    ("naive", "naive: msg per item"),
    ("adhoc", "ad-hoc StreamReader"),
    ("send", "send() per item"),
    ("send_all", "send_all + async for"),
    ("recv_many", "send_all + recv_many"),
    ("tcp_framed", "Framed over TCP"),
    ("raw_tcp", "raw TCP + codec"),
    ("codec", "codec alone, no I/O"),
)


def versions() -> str:
    """Python, platform and library versions, one line."""
    libraries = []
    for name in ("websockets", "msgpack", "cbor2"):
        try:
            libraries.append(f"{name} {version(name)}")
        except PackageNotFoundError:  # pragma: no cover - a dependency is missing
            libraries.append(f"{name} ?")
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        + ", ".join(libraries)
        + f"; {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


def _rate(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def _ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _mb(value: float) -> str:
    return "-" if math.isnan(value) else f"{value / 1e6:,.0f} MB/s"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


@dataclass(frozen=True)
class Check:
    """One target: what it asks, what was measured, and whether it holds."""

    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def _check(target: str, value: float, limit: float, *, at_most: bool = False) -> Check:
    if math.isnan(value):
        return Check(target, "not measured", None)
    met = value <= limit if at_most else value >= limit
    return Check(target, _ratio(value), met)


def checks(results: Results) -> list[Check]:
    """Evaluate every target that this run measured."""
    out = []
    for name in results.config.codecs:
        naive = results.rate("small", name, "naive")
        for mode, limit, text in (
            ("send", SEND_TARGET, "send() per item"),
            ("send_all", SEND_ALL_TARGET, "send_all + async for"),
            ("recv_many", RECV_MANY_TARGET, "send_all + recv_many"),
        ):
            value = results.rate("small", name, mode) / naive
            out.append(_check(f"{name}: {text} >= {limit:g}x naive", value, limit))
    for mode in ("send_all", "recv_many"):
        value = results.rate("small", "cbor", mode) / results.rate("small", "msgpack", mode)
        out.append(_check(f"cbor {mode} >= {CBOR_TARGET:g}x msgpack's rate", value, CBOR_TARGET))
    value = results.rate("bulk", "wsstream") / results.rate("bulk", "websockets")
    out.append(_check(f"bulk: WsStream >= {BULK_TARGET:g}x raw websockets", value, BULK_TARGET))
    small, large = results.config.small_frame, results.config.large_frame
    for name in DECODE_CODECS:
        value = results.seconds("decode", name, large) / results.seconds("decode", name, small)
        out.append(
            _check(
                f"decode {name}: {large // MiB} MiB frame <= {DECODE_TARGET:g}x "
                f"{small // MiB} MiB (1 KiB chunks)",
                value,
                DECODE_TARGET,
                at_most=True,
            )
        )
    peak = results.memory_peak
    if peak is None:
        out.append(Check("slow reader: traced memory bounded", "not measured", None))
    else:
        out.append(
            Check(
                f"slow reader, {results.config.memory // MiB} MiB: traced peak "
                f"<= {MEMORY_BOUND // MiB} MiB",
                f"{peak / MiB:.2f} MiB",
                peak <= MEMORY_BOUND,
            )
        )
    return out


def markdown(results: Results) -> str:
    """The whole report as markdown."""
    config = results.config
    lines = [
        f"## wsframed bench ({config.name}): best of {config.repeat} rounds",
        "",
        versions() + ".",
        "Server and client tasks share one event loop; loopback; compression off.",
        "",
    ]
    if any(key[0] == "small" for key in results.best):
        lines += [
            f"### Small frames, client to server ({config.items:,} items per batched "
            f"transfer, {config.message_items:,} per one-message-per-item transfer)",
            "",
            "Items per second; in brackets, the ratio to the naive baseline "
            "(one websockets message per item).",
            "",
        ]
        rows = []
        for name in config.codecs:
            naive = results.rate("small", name, "naive")
            row = [name, f"{WORKLOADS[name].frame_size()} B"]
            for mode, _ in _SMALL_COLUMNS:
                rate = results.rate("small", name, mode)
                cell = _rate(rate)
                if mode != "naive" and not math.isnan(rate):
                    cell += f" ({_ratio(rate / naive)})"
                row.append(cell)
            rows.append(row)
        lines += _table(["codec", "frame"] + [title for _, title in _SMALL_COLUMNS], rows)
        lines.append("")
    sweep = sorted(key[1] for key in results.best if key[0] == "sweep")
    if sweep:
        naive = results.rate("small", "msgpack", "naive")
        lines += [
            "### Batch size: msgpack, feed() N items then flush(), recv_many()",
            "",
        ]
        rows = []
        for size in sweep:
            rate = results.rate("sweep", size)
            rows.append([str(size), _rate(rate), _ratio(rate / naive)])
        lines += _table(["items per flush", "items/s", "vs naive"], rows)
        lines.append("")
    if any(key[0] == "bulk" for key in results.best):
        raw = results.rate("bulk", "websockets")
        lines += [
            f"### Bulk: {config.bulk // MiB} MiB in 64 KiB writes, read(65536)",
            "",
        ]
        rows = [
            [title, _mb(results.rate("bulk", key)), _ratio(results.rate("bulk", key) / raw)]
            for key, title in (
                ("websockets", "raw websockets send/recv"),
                ("wsstream", "WsStream write+drain / read"),
                ("raw_tcp", "raw TCP asyncio streams"),
            )
        ]
        lines += _table(["path", "throughput", "vs raw websockets"], rows)
        lines.append("")
    if any(key[0] == "decode" for key in results.best):
        small, large = config.small_frame, config.large_frame
        allocator = (
            "glibc malloc set to keep freed memory (mallopt), as a long-running process "
            "settles to; see wsframed.bench.scenarios.keep_freed_memory"
            if results.kept_freed_memory
            else "default allocator settings"
        )
        lines += [
            f"### Decoding one frame fed in 1 KiB chunks ({small // MiB} MiB and "
            f"{large // MiB} MiB; linear time means {large // small}x)",
            "",
            f"No I/O; each decoder iterated after every chunk; {allocator}.",
            "",
        ]
        rows = []
        for name in DECODE_CODECS:
            t_small = results.seconds("decode", name, small)
            t_large = results.seconds("decode", name, large)
            rows.append(
                [
                    name,
                    f"{t_small * 1e3:.1f} ms",
                    f"{t_large * 1e3:.1f} ms",
                    _ratio(t_large / t_small),
                    f"{large / t_large / 1e6:,.0f} MB/s",
                ]
            )
        lines += _table(
            ["codec", f"{small // MiB} MiB", f"{large // MiB} MiB", "ratio", "throughput"], rows
        )
        lines.append("")
    if results.memory_peak is not None and results.memory_seconds is not None:
        lines += [
            "### Memory: a slow reader (1 ms pause every 16 reads of 64 KiB)",
            "",
        ]
        lines += _table(
            ["received", "traced peak (tracemalloc)", "bound", "time"],
            [
                [
                    f"{config.memory // MiB} MiB",
                    f"{results.memory_peak / KiB:,.0f} KiB",
                    f"{MEMORY_BOUND // MiB} MiB",
                    f"{results.memory_seconds:.1f} s",
                ]
            ],
        )
        lines.append("")
    lines += ["### Targets", ""]
    rows = [
        [c.target, c.measured, "n/a" if c.met is None else "met" if c.met else "**missed**"]
        for c in checks(results)
    ]
    lines += _table(["target", "measured", ""], rows)
    return "\n".join(lines) + "\n"
