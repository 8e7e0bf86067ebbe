"""Fixtures for the interoperability tests: the outside tools, and a byte-recording tap.

Every test in this directory is marked ``interop`` (``pytest -m interop`` runs only
them, ``-m "not interop"`` skips them). The tools come from ``.ci/install-interop``:
Node.js with the npm packages pinned in ``package-lock.json``, Chromium, nginx, and
the aiohttp package. When one is missing the tests that need it skip, saying what to
install, except under ``CI=true``, where they fail: CI must not go green by skipping.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEROP_DIR.parents[1]
NODE_MODULES = INTEROP_DIR / "node_modules"
INSTALL_HINT = "run .ci/install-interop (apt-get install nodejs npm chromium nginx; npm ci)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: talks to Node.js, Chromium, nginx or aiohttp (tests/interop)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEROP_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.interop)


def in_ci() -> bool:
    """True when the CI environment variable says so (as GitHub, GitLab and others set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(what: str, found: bool, install: str) -> None:
    """Skip the test (fail it under ``CI=true``) unless ``found``, naming what to install."""
    if found:
        return
    message = f"{what} is not available; to run this test: {install}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def find_executable(env_var: str, *names: str) -> str | None:
    """``$env_var`` if set, else the first of ``names`` on PATH (also /usr/sbin, /sbin)."""
    override = os.environ.get(env_var)
    if override:
        return override if os.access(override, os.X_OK) else None
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def node() -> str:
    """Path of a Node.js 18+ executable with tests/interop/node_modules installed."""
    executable = find_executable("WSFRAMED_NODE", "node", "nodejs")
    require("Node.js (node)", executable is not None, INSTALL_HINT)
    assert executable is not None
    version = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    require(f"Node.js 18 or later (found {version})", major >= 18, INSTALL_HINT)
    lock = json.loads((INTEROP_DIR / "package-lock.json").read_text())
    for package in ("ws", "@msgpack/msgpack", "cbor-x"):
        manifest = NODE_MODULES / package / "package.json"
        pinned = lock["packages"][f"node_modules/{package}"]["version"]
        installed = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        require(
            f"npm package {package}@{pinned} in tests/interop/node_modules "
            f"(found {installed or 'nothing'})",
            installed == pinned,
            "cd tests/interop && npm ci --omit=optional --ignore-scripts",
        )
    return executable


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium (or Chrome) executable; $WSFRAMED_CHROMIUM overrides."""
    executable = find_executable(
        "WSFRAMED_CHROMIUM",
        "chromium",
        "chromium-browser",
        "google-chrome-stable",
        "google-chrome",
    )
    require("Chromium", executable is not None, INSTALL_HINT)
    assert executable is not None
    return executable


@pytest.fixture(scope="session")
def nginx() -> str:
    """Path of an nginx executable; $WSFRAMED_NGINX overrides."""
    executable = find_executable("WSFRAMED_NGINX", "nginx")
    require("nginx", executable is not None, INSTALL_HINT)
    assert executable is not None
    return executable


@pytest.fixture(scope="session")
def aiohttp_lib() -> Any:
    """The aiohttp module (a test dependency, but an optional one outside CI)."""
    try:
        import aiohttp
    except ImportError:
        aiohttp = None
    require("the aiohttp package", aiohttp is not None, "pip install aiohttp")
    return aiohttp


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for programs that cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Digest:
    """Length and SHA-256 of a byte stream, updated chunk by chunk."""

    def __init__(self) -> None:
        self.length = 0
        self._sha = hashlib.sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.length += len(data)
        self._sha.update(data)

    @property
    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def __repr__(self) -> str:
        return f"Digest(length={self.length}, sha256={self.hexdigest})"


class Tap:
    """A byte stream that passes everything through to ``stream`` and digests it.

    ``Framed(Tap(ws_stream), codec)`` frames exactly as ``Framed(ws_stream, codec)``
    does, while :attr:`read` and :attr:`written` record the raw bytes each way, so a
    test can compare them byte for byte with what the peer sent and received.
    """

    def __init__(self, stream: Any):
        self.stream = stream
        self.read_digest = Digest()
        self.written_digest = Digest()

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self.stream.read(n)
        self.read_digest.update(data)
        return data

    def write(self, data: bytes) -> None:
        self.written_digest.update(data)
        self.stream.write(data)

    async def drain(self) -> None:
        await self.stream.drain()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.stream.get_extra_info(name, default)
