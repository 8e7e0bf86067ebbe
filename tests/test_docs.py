"""The README's and the docs' code is the code the suite runs."""

from __future__ import annotations

import re
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
