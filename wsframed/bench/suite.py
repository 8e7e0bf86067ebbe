"""The benchmark plan and the runner (the tables are made in ``report``).

A run is a list of jobs. The runner goes through the whole list once per round and
keeps each job's best (shortest) time, so a job and the baselines it is compared with
are measured close together in time, several times, and a burst of load from another
process on the machine spoils one round of one job rather than a ratio. The machine
the numbers in docs/performance.md come from has two cores shared with other work:
best-of-N is the honest figure there, and the table says N.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..codecs import (
    BytesCodec,
    CborCodec,
    JsonLinesCodec,
    LengthPrefixedCodec,
    LinesCodec,
    MsgpackCodec,
)
from ..loops import run as run_on_loop
from . import scenarios
from .workloads import WORKLOADS, Workload

__all__ = ["FULL", "QUICK", "Config", "Job", "Results", "plan", "run"]

T = TypeVar("T")

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Config:
    """How much a run measures."""

    name: str
    repeat: int  # rounds; each job's best round counts
    items: int  # small frames per batched transfer
    message_items: int  # small frames per transfer that sends one message per item
    bulk: int  # bytes per bulk transfer
    memory: int  # bytes through the slow reader
    small_frame: int = 1 * MiB  # the linear-decoding pair of frame sizes
    large_frame: int = 16 * MiB
    sweep: tuple[int, ...] = ()  # batch sizes for the items/s-against-batch chart
    sweep_items: int = 0
    codecs: tuple[str, ...] = tuple(WORKLOADS)
    # Time in CPU seconds of this process (time.process_time) instead of wall-clock:
    # server and client run in this one process, so what it spent is the whole cost,
    # and other processes on a shared machine do not add to it.
    cpu_time: bool = False
    # The loop family every job runs on: "asyncio" or "trio" (websockets.trio, trio's
    # TCP streams; the modes scenarios.unavailable() names are not measured there).
    loop: str = "asyncio"


QUICK = Config(
    "quick",
    repeat=5,
    items=25_000,
    message_items=5_000,
    bulk=32 * MiB,
    memory=128 * MiB,
)
"""The quick set (``wsframed bench``, ``benchmarks/run.py --quick``): under a minute."""

FULL = Config(
    "full",
    repeat=5,
    items=100_000,
    message_items=100_000,
    bulk=256 * MiB,
    memory=1 * GiB,
    sweep=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
    sweep_items=50_000,
)
"""The full set (``benchmarks/run.py``): 100k items, several minutes."""


@dataclass(frozen=True)
class Job:
    """One measurement: ``run()`` returns seconds for ``units`` items or bytes.

    A job that measures several things at once (the two frame sizes of a decoding
    case, alternated so that both see the same machine) has one key and one unit
    count per thing, and ``run()`` returns a tuple of seconds in that order.
    """

    keys: tuple[tuple[Any, ...], ...]
    label: str
    units: tuple[int, ...]
    run: Callable[[], Coroutine[Any, Any, float | tuple[float, ...]]]


@dataclass
class Results:
    """Best times by job key, plus the memory measurement."""

    config: Config
    best: dict[tuple[Any, ...], float] = field(default_factory=dict)
    units: dict[tuple[Any, ...], int] = field(default_factory=dict)
    memory_peak: int | None = None
    memory_seconds: float | None = None
    kept_freed_memory: bool = False  # the decoding scenario tuned glibc malloc

    def rate(self, *key: Any) -> float:
        """Units (items or bytes) per second of the best round; NaN if not measured."""
        seconds = self.best.get(key)
        if not seconds:
            return math.nan
        return self.units[key] / seconds

    def seconds(self, *key: Any) -> float:
        """The best time of a job; NaN if not measured."""
        return self.best.get(key, math.nan)


def _blob(size: int) -> bytes:
    return b"x" * size


def _text(size: int) -> str:
    return "x" * size


# The large-frame decoding cases: a codec factory taking max_frame_size, and a factory
# of the one item to send, taking its payload size.
DECODE_CASES: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {
    "bytes": (BytesCodec, _blob),
    "lines": (functools.partial(LinesCodec, "utf-8"), _text),
    "length": (functools.partial(LengthPrefixedCodec, 4, "big"), _blob),
    "msgpack": (MsgpackCodec, _blob),
    "cbor": (CborCodec, _blob),
    "jsonl": (JsonLinesCodec, _text),
}
DECODE_CODECS = tuple(DECODE_CASES)


async def _decode_pair(
    factory: Callable[[int], Any], make_item: Callable[[int], Any], sizes: tuple[int, int]
) -> tuple[float, float]:
    # The two sizes alternate, a few times per round, and each keeps its best run:
    # both then see the same machine (load, caches, allocator), which their ratio
    # needs. The frames are encoded and cut once, outside the timing.
    scenarios.keep_freed_memory()
    codec = factory(64 * MiB)
    small = scenarios.frame_pieces(codec, make_item(sizes[0]))
    large = scenarios.frame_pieces(codec, make_item(sizes[1]))
    best_small = best_large = math.inf
    for _ in range(3):
        best_small = min(best_small, scenarios.decode_pieces(codec, small))
        best_large = min(best_large, scenarios.decode_pieces(codec, large))
    return best_small, best_large


async def _sweep_pair(workload: Workload, count: int, size: int) -> tuple[float, float]:
    # One batch size and the limit (raw TCP + the plain library, the same items)
    # alternate, each keeping its best run, so the chart's ratio at this point divides
    # two figures measured seconds apart, not minutes.
    best_batch = best_limit = math.inf
    for _ in range(2):
        best_batch = min(best_batch, await scenarios.small_frames(workload, "batch", count, size))
        best_limit = min(best_limit, await scenarios.small_frames(workload, "plain_tcp", count))
    return best_batch, best_limit


def plan(config: Config, sections: tuple[str, ...] = ("small", "bulk", "decode")) -> list[Job]:
    """Return the jobs of one round for ``config``."""
    jobs: list[Job] = []
    if "small" in sections:
        per_message = ("naive", "send")
        for name in config.codecs:
            workload = WORKLOADS[name]
            for mode in scenarios.SMALL_MODES:
                if mode == "batch" or scenarios.unavailable(mode, config.loop):
                    continue
                count = config.message_items if mode in per_message else config.items
                jobs.append(
                    Job(
                        (("small", name, mode),),
                        f"{name} {mode}",
                        (count,),
                        functools.partial(scenarios.small_frames, workload, mode, count),
                    )
                )
    if "sweep" in sections and config.sweep:
        workload = WORKLOADS["msgpack"]
        count = config.sweep_items
        for size in config.sweep:
            jobs.append(
                Job(
                    (("sweep", size), ("sweep_limit", size)),
                    f"batch of {size}, and the limit beside it",
                    (count, count),
                    functools.partial(_sweep_pair, workload, count, size),
                )
            )
    if "bulk" in sections:
        total = config.bulk
        for name, function in (
            ("websockets", scenarios.bulk_websockets),
            ("wsstream", scenarios.bulk_wsstream),
            ("raw_tcp", scenarios.bulk_raw_tcp),
        ):
            jobs.append(
                Job(
                    (("bulk", name),), f"bulk {name}", (total,), functools.partial(function, total)
                )
            )
    if "decode" in sections:
        small, large = config.small_frame, config.large_frame
        for name, (factory, make_item) in DECODE_CASES.items():
            jobs.append(
                Job(
                    (("decode", name, small), ("decode", name, large)),
                    f"decode {name}, {small // MiB} and {large // MiB} MiB",
                    (small, large),
                    functools.partial(_decode_pair, factory, make_item, (small, large)),
                )
            )
    return jobs


Progress = Callable[[str], None]


async def _awaited(job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return await job()


@contextlib.contextmanager
def _runner(loop: str) -> Iterator[Callable[[Callable[[], Coroutine[Any, Any, T]]], T]]:
    """``run(job)``: run one job to its end on ``loop`` ("asyncio": one event loop for
    every job, as ``asyncio.Runner``; "trio": a ``trio.run`` per job)."""
    if loop == "trio":  # loops.run: trio.run, or an error naming the extra
        yield lambda job: run_on_loop("trio", _awaited, job)
        return
    if loop != "asyncio":
        raise ValueError(f"loop must be 'asyncio' or 'trio', not {loop!r}")
    with asyncio.Runner() as runner:
        yield lambda job: runner.run(job())


def run(
    config: Config,
    *,
    sections: tuple[str, ...] = ("small", "sweep", "bulk", "decode", "memory"),
    progress: Progress | None = None,
) -> Results:
    """Run ``config``'s jobs, round-robin, ``config.repeat`` times; return the best times.

    ``sections`` picks what to measure: ``small`` (small frames per codec), ``sweep``
    (items/s against batch size, when ``config.sweep`` lists sizes), ``bulk``,
    ``decode`` (one large frame) and ``memory`` (the slow reader).
    """
    results = Results(config)
    jobs = plan(config, sections)
    total = len(jobs) * config.repeat + ("memory" in sections)
    done = 0

    def report(label: str) -> None:
        if progress is not None:
            progress(f"[{done + 1:3}/{total}] {label}")

    scenarios.clock = time.process_time if config.cpu_time else time.perf_counter
    try:
        with _runner(config.loop) as runner:
            for round_number in range(1, config.repeat + 1):
                for job in jobs:
                    report(f"round {round_number}/{config.repeat}: {job.label}")
                    gc.collect()
                    measured = runner(job.run)
                    done += 1
                    if not isinstance(measured, tuple):
                        measured = (measured,)
                    for key, units, seconds in zip(job.keys, job.units, measured, strict=True):
                        best = results.best.get(key)
                        if best is None or seconds < best:
                            results.best[key] = seconds
                        results.units[key] = units
            results.kept_freed_memory = (
                scenarios.keep_freed_memory() if "decode" in sections else False
            )
            if "memory" in sections:
                report(f"slow reader, {config.memory // MiB} MiB under tracemalloc")
                gc.collect()
                memory = functools.partial(scenarios.slow_reader_memory, config.memory)
                peak, seconds = runner(memory)
                done += 1
                results.memory_peak = peak
                results.memory_seconds = seconds
    finally:
        scenarios.clock = time.perf_counter
    return results
