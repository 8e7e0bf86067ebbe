"""``wsframed bench``: the shape of what it prints, not how fast anything is.

The tables are checked on fabricated results (exact cells, in-process, instant) and
once on a real run small enough to take about a second. No test asserts on a rate:
speed lives in the benchmarks' own runs (see docs/performance.md).
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import replace

import pytest

from wsframed import cli
from wsframed.bench import QUICK, SECTIONS, Results, markdown
from wsframed.bench.report import LIMITS
from wsframed.bench.suite import DECODE_CODECS, MiB
from wsframed.bench.workloads import WORKLOADS

VERDICTS = re.compile(r"\b(missed|met|target|targets|pass|fail|ok)\b", re.I)


def fabricated(codecs: tuple[str, ...] = ("msgpack", "cbor")) -> Results:
    """Results whose every time is chosen, so that every cell is known exactly."""
    config = replace(QUICK, items=1000, message_items=100, codecs=codecs, sweep=(1, 16))
    results = Results(config)
    seconds = {  # small frames: 1000 items (100 for naive and send) in these times
        "naive": 0.1, "adhoc": 0.25, "send": 0.05, "send_all": 0.8, "recv_many": 0.5,
        "tcp_framed": 0.4, "plain_tcp": 0.25, "raw_tcp": 0.5, "codec": 0.125,
    }
    for name in codecs:
        for mode, time in seconds.items():
            results.best[("small", name, mode)] = time
            results.units[("small", name, mode)] = 100 if mode in ("naive", "send") else 1000
    for size, time, limit in ((1, 1.0, 0.25), (16, 0.1, 0.2)):
        results.best[("sweep", size)] = time
        results.units[("sweep", size)] = 1000
        results.best[("sweep_limit", size)] = limit
        results.units[("sweep_limit", size)] = 1000
    for name, time in (("websockets", 1.0), ("wsstream", 0.5), ("raw_tcp", 0.25)):
        results.best[("bulk", name)] = time
        results.units[("bulk", name)] = 100_000_000
    for name in DECODE_CODECS:
        for size, time in ((MiB, 0.001), (16 * MiB, 0.016)):
            results.best[("decode", name, size)] = time
            results.units[("decode", name, size)] = size
    results.memory_peak = 2 * MiB
    results.memory_seconds = 1.5
    return results


def table(report: str, heading: str) -> list[str]:
    """The rows of the table under ``### heading...``, header and rule included."""
    section = report.split("\n### " + heading, 1)[1].split("\n### ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_small_frames_are_divided_by_the_limit_of_their_codec() -> None:
    report = markdown(fabricated())
    assert table(report, "Small frames against the limit") == [
        "| codec, frame | limit | items/s | send_all + recv_many | send_all + async for "
        "| Framed over TCP |",
        "|---|---|---|---|---|---|",
        # msgpack's limit is raw TCP + msgpack: 1000 / 0.25 = 4k items/s
        "| msgpack, 28 B | TCP + msgpack | 4k | 2k (0.50x) | 1k (0.31x) | 2k (0.62x) |",
        # CBOR's is the codec alone: 1000 / 0.125 = 8k items/s
        "| cbor, 28 B | codec alone | 8k | 2k (0.25x) | 1k (0.16x) | 2k (0.31x) |",
    ]


def test_small_frames_against_one_message_per_item() -> None:
    report = markdown(fabricated(("lines",)))
    assert table(report, "Small frames against the code you would write") == [
        "| codec | naive: msg per item | ad-hoc StreamReader | send() per item "
        "| send_all + recv_many |",
        "|---|---|---|---|---|",
        "| lines | 1k | 4k (4.00x) | 2k (2.00x) | 2k (2.00x) |",
    ]
    assert table(report, "The limits") == [
        "| codec | codec alone, no I/O | TCP + plain library | TCP + wsframed codec |",
        "|---|---|---|---|",
        "| lines | 8k | 4k | 2k |",
    ]


def test_batch_sizes_against_naive_and_the_limit_measured_beside_each() -> None:
    assert table(markdown(fabricated()), "Batch size") == [
        "| items per flush | items/s | vs naive | limit beside it | vs limit |",
        "|---|---|---|---|---|",
        "| 1 | 1k | 1.00x | 4k | 0.25x |",
        "| 16 | 10k | 10.0x | 5k | 2.00x |",
    ]


def test_every_workload_has_a_limit() -> None:
    assert set(LIMITS) == set(WORKLOADS)


def test_no_verdicts_only_figures() -> None:
    """Whether a figure is good enough is the project's planning, not the tool's."""
    report = markdown(fabricated(tuple(WORKLOADS)))
    assert VERDICTS.findall(report) == []
    assert "### Decoding one frame" in report  # every section was printed
    assert "### Memory" in report


def test_a_real_run_prints_the_tables_and_no_progress_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "--only", "small", "--codec", "msgpack", "--codec", "jsonl",
            "--items", "300", "--repeat", "1"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""  # stderr is not a terminal here and --progress was not given
    assert out.startswith("## wsframed bench (quick): best of 1 round\n")
    headings = re.findall(r"^### (.*)$", out, re.M)
    assert headings == [
        "Small frames against the limit (300 items client to server)",
        "Small frames against the code you would write",
        "The limits",
    ]
    rows = table(out, "Small frames against the limit")
    assert [row.split(" | ")[:2] for row in rows[2:]] == [
        ["| msgpack, 28 B", "TCP + msgpack"],
        ["| jsonl, 96 B", "codec alone"],
    ]
    assert re.fullmatch(r"(\| [^|]+ ){6}\|", rows[2])  # six columns, every cell filled
    assert VERDICTS.findall(out) == []


def test_progress_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--only", "small", "--codec", "length", "--items", "200",
            "--repeat", "2", "--progress"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert [line.split("s ", 1)[1] for line in lines[:-1]] == ["round 1/2", "round 2/2"]
    assert re.fullmatch(r"done in \d+ s", lines[-1])


def test_help_names_the_limits_and_no_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "raw TCP with the plain library" in out
    for section in SECTIONS:
        assert section in out
    assert "target" not in out.lower()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_rewrites_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["bench", "--only", "small", "--codec", "length", "--items", "200", "--repeat", "1"]
    assert cli.main(argv) == 0
    shown = terminal.getvalue()
    updates = shown.split("\r\x1b[K")
    assert updates[0] == ""  # every update starts by clearing the line
    jobs = [update.split("s ", 1)[1] for update in updates[1:-1]]
    assert jobs == [
        f"[{i:3}/{len(jobs)}] round 1/1: length {mode}"
        for i, mode in enumerate(
            ("naive", "adhoc", "send", "send_all", "recv_many", "tcp_framed",
             "plain_tcp", "raw_tcp", "codec"),
            start=1,
        )
    ]
    assert re.fullmatch(r"done in \d+ s\n", updates[-1])
    assert capsys.readouterr().out.startswith("## wsframed bench")
