"""Build the documentation site the way a reader gets it (shared by the site tests).

One strict ``mkdocs build`` into a directory of the caller's; the docs extra must be
installed (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 240  # seconds; the build takes 2 to 10 s on an idle machine


def build_site(site_dir: Path) -> str:
    """Build the site into ``site_dir`` (``--strict``); return the build's log.

    Raises ``AssertionError`` with the end of the log when the build fails, and
    ``subprocess.TimeoutExpired`` after ``BUILD_TIMEOUT`` seconds.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_MKDOCS_2_WARNING"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    return log
