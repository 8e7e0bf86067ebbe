"""docs/cli.md against the program it describes, so that the two cannot drift.

``wsframed demo`` runs once as a user runs it (a subprocess); ``--help`` of every
subcommand is taken in-process. Then:

* the demo's section headings, as printed, are the ones docs/cli.md lists (same
  numbers, same titles, in order) and the ones ``wsframed demo --help`` lists; the
  headings docs/quickstart.md quotes are among them;
* every line the docs quote from the demo's transcript is a line it prints (the port
  number aside);
* every option docs/cli.md names in a subcommand's section is an option of that
  subcommand, and every option of ``demo``, ``serve``, ``connect`` and ``bench`` is
  named in its section (``bridge`` has its own page);
* the headings quoted from ``wsframed bench`` are headings it prints.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wsframed import cli

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
QUICKSTART_MD = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
SUBCOMMANDS = ("demo", "serve", "connect", "bridge", "bench")
HEADING = re.compile(r"^== (\d+)\. (.+)$", re.M)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
PORT = re.compile(r"(127\.0\.0\.1):\d+")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo_output() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wsframed", "demo"], cwd=ROOT, capture_output=True,
        text=True, encoding="utf-8", timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def help_text(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([*argv, "--help"]) == 0
    return out.getvalue()


def section(page: str, name: str) -> str:
    """The text of ``## name`` in ``page``, up to the next ``## `` heading (a line in a
    fenced block, such as the bench's own markdown output, is not a heading)."""
    lines: list[str] = []
    inside = fenced = False
    for line in page.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            if inside:
                break
            inside = line == f"## {name}"
            continue
        if inside:
            lines.append(line)
    assert lines, f"no section {name!r}"
    return "\n".join(lines)


def quoted_headings(text: str) -> list[tuple[str, str]]:
    """``== N. Title`` headings quoted in ``text`` (in code spans or blocks), each once,
    by number."""
    found = re.findall(r"(?:^|`)== (\d+)\. ([^`\n]+)", text, re.M)
    return sorted({(number, title.strip()) for number, title in found}, key=lambda h: int(h[0]))


def test_cli_md_lists_the_demo_sections_it_prints(demo_output: str) -> None:
    printed = HEADING.findall(demo_output)
    assert len(printed) >= 7  # the check is not vacuous
    assert [number for number, _ in printed] == [str(i) for i in range(1, len(printed) + 1)]
    assert quoted_headings(section(CLI_MD, "demo")) == printed


def test_demo_help_lists_the_demo_sections(demo_output: str) -> None:
    listed = re.findall(r"^  (\d+)\. (.+)$", help_text("demo"), re.M)
    assert listed == HEADING.findall(demo_output)


def test_quickstart_quotes_demo_headings_it_prints(demo_output: str) -> None:
    quoted = quoted_headings(QUICKSTART_MD)
    assert quoted  # the check is not vacuous
    assert set(quoted) <= set(HEADING.findall(demo_output))


def transcript_lines(page: str) -> list[str]:
    """Lines quoted from the demo's output: its console blocks after ``$ wsframed
    demo``, and the quickstart's text block of it."""
    lines = []
    for block in re.findall(r"^```(?:console|text)\n(.*?)^```", page, re.S | re.M):
        if "== " not in block:
            continue
        lines += [
            line for line in block.splitlines()
            if line.strip() and line != "..." and not line.startswith("$ ")
        ]
    return lines


@pytest.mark.parametrize("page", ["cli.md", "quickstart.md"])
def test_quoted_transcript_lines_are_printed(page: str, demo_output: str) -> None:
    text = CLI_MD if page == "cli.md" else QUICKSTART_MD
    quoted = transcript_lines(text)
    assert len(quoted) >= 5
    printed = set(PORT.sub(r"\1:PORT", demo_output).splitlines())
    missing = [line for line in quoted if PORT.sub(r"\1:PORT", line) not in printed]
    assert missing == [], f"docs/{page} quotes lines the demo does not print"


def options_of(help_output: str) -> set[str]:
    """The long options a ``--help`` output lists (the options section only)."""
    body = help_output.split("\noptions:\n", 1)[1]
    return set(re.findall(r"^\s{2,}(--[a-z][a-z-]*)", body, re.M)) - {"--help"}


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_options_named_in_cli_md_exist(command: str) -> None:
    named = set(OPTION.findall(section(CLI_MD, command))) - {"--help"}
    if command == "bench":
        named -= {"--quick", "--chart"}  # benchmarks/run.py's, named for the full set
    actual = options_of(help_text(command))
    assert named - actual == set(), f"cli.md names options `wsframed {command}` lacks"


@pytest.mark.parametrize("command", ["demo", "serve", "connect", "bench"])
def test_every_option_is_in_cli_md(command: str) -> None:
    named = set(OPTION.findall(section(CLI_MD, command)))
    assert options_of(help_text(command)) - named == set(), f"document them in cli.md#{command}"


def test_global_options_named_in_cli_md_exist() -> None:
    intro = CLI_MD.split("\n## ", 1)[0]
    named = set(OPTION.findall(intro)) - {"--help"}
    assert named  # --debug, at least
    assert named <= options_of(help_text())


def test_bench_headings_quoted_in_cli_md_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    block = re.search(r"```console\n\$ wsframed bench(.*?)```", CLI_MD, re.S)
    assert block is not None
    quoted = [line for line in block.group(1).splitlines() if line.startswith("#")]
    assert len(quoted) >= 4
    argv = ["bench", "--codec", "msgpack", "--only", "small", "--items", "200", "--repeat", "2"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()

    def numbers(line: str) -> str:
        return re.sub(r"\d[\d,]*", "N", line)

    assert [numbers(line) for line in printed if line.startswith("#")] == [
        numbers(line) for line in quoted
    ]
