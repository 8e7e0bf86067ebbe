"""Turn ``Results`` into markdown tables.

Every figure is the best of the run's rounds; every ratio divides two figures from the
same run. The small-frame rates are divided by the *limit* measured in the same run:
raw TCP with the plain library (``msgpack``, ``struct``, a ``split``) for msgpack,
length-prefixed frames and lines, and wsframed's codec with no I/O at all for CBOR
and JSON Lines, whose libraries cost more than any transport. The tables report
figures and ratios only: what counts as good enough is the project's planning, not
the tool's.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

from .scenarios import unavailable
from .suite import DECODE_CODECS, KiB, MiB, Results
from .workloads import WORKLOADS

__all__ = ["LIMITS", "MEMORY_BOUND", "limit_rate", "markdown", "versions"]

MEMORY_BOUND = 4 * MiB
"""The traced-memory bound for the slow-reader run (see docs/performance.md).

With 64 KiB messages: websockets' receive queue (``max_queue=16`` messages, plus the
frames of the socket read that crossed the high-water mark, at most 256 KiB), its
parser's buffer, the WsStream read buffer (one message), and on the sending side the
transport's write buffer (32 KiB high-water mark) and one masked frame: about 2 MiB.
The bound leaves room for allocator and bookkeeping noise; it does not grow with the
amount of data transferred.
"""

LIMITS: dict[str, tuple[str, str]] = {
    "msgpack": ("plain_tcp", "TCP + msgpack"),
    "cbor": ("codec", "codec alone"),
    "cbor-100": ("codec", "codec alone"),
    "lines": ("plain_tcp", "TCP + split"),
    "length": ("plain_tcp", "TCP + struct"),
    "jsonl": ("codec", "codec alone"),
}
"""Per workload: the mode measured as its limit, and how the table names it."""

_AGAINST_LIMIT = (
    ("recv_many", "send_all + recv_many"),
    ("send_all", "send_all + async for"),
    ("tcp_framed", "Framed over TCP"),
)
_AGAINST_NAIVE = (
    ("adhoc", "ad-hoc StreamReader"),
    ("send", "send() per item"),
    ("recv_many", "send_all + recv_many"),
)
_LIMITS_TABLE = (
    ("codec", "codec alone, no I/O"),
    ("plain_tcp", "TCP + plain library"),
    ("raw_tcp", "TCP + wsframed codec"),
)


def versions(loop: str = "asyncio") -> str:
    """Python, platform and library versions, one line (trio's too on ``loop="trio"``)."""
    libraries = []
    for name in ("websockets", "msgpack", "cbor2", *(("trio",) if loop == "trio" else ())):
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
    if math.isnan(value):
        return "-"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _mb(value: float) -> str:
    return "-" if math.isnan(value) else f"{value / 1e6:,.0f} MB/s"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def limit_rate(results: Results, name: str) -> float:
    """The limit of workload ``name`` in this run (items/s; NaN if not measured)."""
    return results.rate("small", name, LIMITS[name][0])


def _cell(rate: float, base: float) -> str:
    """A rate, and in brackets its ratio to ``base`` (nothing when either is missing)."""
    cell = _rate(rate)
    if not (math.isnan(rate) or math.isnan(base)):
        cell += f" ({_ratio(rate / base)})"
    return cell


def markdown(results: Results) -> str:
    """The whole report as markdown."""
    config = results.config
    trio = config.loop == "trio"
    lines = [
        f"## wsframed bench ({config.name}): best of {config.repeat} "
        + ("round" if config.repeat == 1 else "rounds")
        + (" on trio" if trio else ""),
        "",
        versions(config.loop) + ".",
        (
            "Server and client tasks share one trio run (websockets.trio, trio's TCP "
            "streams); loopback; compression off. "
            if trio
            else "Server and client tasks share one event loop; loopback; compression off. "
        )
        + (
            "Times are CPU seconds of this process (server and client both), which "
            "other work on the machine does not inflate."
            if config.cpu_time
            else "Times are wall-clock."
        ),
        "",
    ]
    if trio and any(key[0] == "small" for key in results.best):
        missing = {
            title: why
            for mode, title in (*_AGAINST_LIMIT, *_AGAINST_NAIVE)
            if (why := unavailable(mode, "trio")) is not None
        }
        lines += [
            "Not on trio (shown as -): "
            + "; ".join(f"{title} ({why})" for title, why in missing.items())
            + ".",
            "",
        ]
        if "Framed over TCP" not in missing:
            lines += ["Framed over TCP on trio: Framed over anyio's TCP streams.", ""]
    if any(key[0] == "small" for key in results.best):
        lines += [
            f"### Small frames against the limit ({config.items:,} items client to "
            "server)",
            "",
            "Items per second; in brackets, the ratio to the limit measured in this run: "
            "raw TCP with the plain library (64 KiB writes, no wsframed), or for CBOR and "
            "JSON Lines wsframed's codec with no I/O at all.",
            "",
        ]
        rows = []
        for name in config.codecs:
            limit = limit_rate(results, name)
            row = [f"{name}, {WORKLOADS[name].frame_size()} B", LIMITS[name][1], _rate(limit)]
            row += [_cell(results.rate("small", name, mode), limit) for mode, _ in _AGAINST_LIMIT]
            rows.append(row)
        lines += _table(
            ["codec, frame", "limit", "items/s"] + [title for _, title in _AGAINST_LIMIT], rows
        )
        lines += [
            "",
            "### Small frames against the code you would write",
            "",
            "Items per second; in brackets, the ratio to the naive baseline: one "
            f"websockets message per item ({config.message_items:,} items for it and for "
            "send() per item).",
            "",
        ]
        rows = []
        for name in config.codecs:
            naive = results.rate("small", name, "naive")
            row = [name, _rate(naive)]
            row += [_cell(results.rate("small", name, mode), naive) for mode, _ in _AGAINST_NAIVE]
            rows.append(row)
        lines += _table(
            ["codec", "naive: msg per item"] + [title for _, title in _AGAINST_NAIVE], rows
        )
        lines += [
            "",
            "### The limits",
            "",
            "Items per second with no wsframed I/O layer: the codec alone, and raw TCP "
            "with the plain library or with wsframed's codec.",
            "",
        ]
        rows = [
            [name] + [_rate(results.rate("small", name, mode)) for mode, _ in _LIMITS_TABLE]
            for name in config.codecs
        ]
        lines += _table(["codec"] + [title for _, title in _LIMITS_TABLE], rows)
        lines.append("")
    sweep = sorted(key[1] for key in results.best if key[0] == "sweep")
    if sweep:
        naive = results.rate("small", "msgpack", "naive")
        lines += [
            "### Batch size: msgpack, feed() N items then flush(), recv_many()",
            "",
            "The limit (raw TCP + plain msgpack, the same items) is measured beside "
            "each batch size, alternating with it.",
            "",
        ]
        rows = []
        for size in sweep:
            rate = results.rate("sweep", size)
            limit = results.rate("sweep_limit", size)
            rows.append(
                [str(size), _rate(rate), _ratio(rate / naive), _rate(limit), _ratio(rate / limit)]
            )
        lines += _table(
            ["items per flush", "items/s", "vs naive", "limit beside it", "vs limit"], rows
        )
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
                ("raw_tcp", f"raw TCP {config.loop} streams"),
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
    return "\n".join(lines)
