"""Interoperability tests: wsframed against peers nobody here wrote.

Node.js (``ws``, ``@msgpack/msgpack``, ``cbor-x``), a browser (headless Chromium over
the DevTools protocol), nginx as a reverse proxy, and aiohttp. Tools come from
``.ci/install-interop``; see ``conftest.py`` for how missing tools skip (or fail in CI).
"""
