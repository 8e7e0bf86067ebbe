"""The README's and the docs' code is the code the suite runs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quickstart_is_the_tested_example() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert (ROOT / "examples" / "quickstart.py").read_text() in blocks


def test_readme_has_the_two_fresh_machine_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e . && wsframed demo" in readme
    assert "pip install -e '.[test]' && python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest\n" in ci  # CI runs the README's test command as written


def test_docs_snippets_point_at_files_that_exist() -> None:
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r'--8<-- "([^"]+)"', page.read_text()):
            path = target.split(":", 1)[0]
            assert (ROOT / path).is_file(), f"{page.name} includes missing {path}"


def _python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        fences = re.findall(r"^([ \t]*)```python\n(.*?)^\1```", page.read_text(), re.S | re.M)
        for _indent, text in fences:
            block = textwrap.dedent(text)
            if "--8<--" not in block:  # included files are run by their own tests
                blocks.append((page.name, block))
    return blocks


def test_every_inline_python_block_in_the_docs_executes() -> None:
    """Inline samples run as modules: imports resolve, names exist, definitions hold.

    ``asyncio.run`` is swapped for a stub so deployment samples (fixed ports, real
    certificates) define their ``main()`` without serving; runnable programs live in
    ``examples/`` and are included, and executed by tests/test_examples.py.
    """
    import asyncio

    blocks = _python_blocks()
    assert blocks  # the check is not vacuous
    real_run = asyncio.run
    started: list[str] = []

    def fake_run(coro: object, **_: object) -> None:
        started.append(getattr(coro, "__name__", "?"))
        coro.close()  # type: ignore[attr-defined]

    asyncio.run = fake_run  # type: ignore[assignment]
    try:
        for page, block in blocks:
            namespace: dict[str, object] = {"__name__": "docs_sample"}
            exec(compile(block, f"docs/{page}", "exec"), namespace)  # our own docs only
    finally:
        asyncio.run = real_run


async def test_the_byte_stream_guide_example_runs(capsys: object) -> None:
    from examples.byte_stream_echo import main

    await main()
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "b'HELLO\\n'" in out
    assert "b'BYTE STREAM\\n'" in out
    assert "event: Closed(code=1000, reason='')" in out
    assert "closed with 1000" in out
