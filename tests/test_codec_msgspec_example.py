"""examples/typed_rpc.py runs as a user runs it and prints what it says (docs/typed-frames.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_typed_rpc_example_decodes_each_kind_and_refuses_a_bad_frame() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")
    ]))}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "typed_rpc.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "Result(id=1, value=3.5)",
        "Result(id=2, value='TYPED')",
        # The third frame starts after the first two lines (40 + 39 bytes).
        "Refused(path='$.numbers[1]', offset=79)",
        "Result(id=4, value=42.0)",
        """wire: b'{"type":"upper","id":2,"text":"typed"}\\n'""",
    ]
