"""The documentation site as a reader gets it: built, with every reference rendered.

One strict ``mkdocs build`` (a few seconds) into a temporary directory, then three checks
on the HTML it wrote:

* no raw Sphinx role (``:class:`` and kin) and no unprocessed autorefs link
  (``[`Framed`][wsframed.Framed]`` left as text) in what a reader sees (code spans
  may quote them);
* every local ``href``/``src`` names a file of the site, and every ``#anchor`` exists in
  the page it points into (``mkdocs build --strict`` only logs missing anchors);
* the build did not fall back to unformatted signatures (the docs extra installs Ruff).
"""

from __future__ import annotations

import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from .docs_site import BUILD_TIMEOUT, build_site

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra is not installed")


ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|exc|data|obj|const|ref|doc):(?=[`~\w])")
UNPROCESSED_AUTOREF = re.compile(r"\]\[wsframed[\w.]*\]")
UNFORMATTED_SIGNATURES = "Formatting signatures requires"


class _Page(HTMLParser):
    """Collects a page's ids, its local references, and its visible prose text.

    A code span counts as one backtick in the prose: a raw role renders as
    ``:class:<code>Framed</code>``, prose that quotes one inside a code span is fine.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[str] = []
        self.text: list[str] = []
        self._skip = 0  # inside <script>, <style> or <pre>: not prose
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(str(values[key]))
        for key in ("href", "src"):
            value = values.get(key)
            if value is not None:
                self.refs.append(value)
        if tag in ("script", "style", "pre"):
            self._skip += 1
        elif tag == "code":
            if not self._code and not self._skip:
                self.text.append("`")
            self._code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "pre") and self._skip:
            self._skip -= 1
        elif tag == "code" and self._code:
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._code:
            self.text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Build the site once (strict) and return its directory and the build's log."""
    site_dir = tmp_path_factory.mktemp("site")
    try:
        log = build_site(site_dir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mkdocs build took more than {BUILD_TIMEOUT} s")
    return site_dir, log


def _pages(site_dir: Path) -> dict[Path, _Page]:
    pages = {}
    for path in sorted(site_dir.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path] = page
    return pages


def _target(site_dir: Path, page: Path, ref: str) -> tuple[Path, str] | None:
    """The file and anchor a local reference points to; None for an external one."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or ref.startswith(("mailto:", "data:", "javascript:")):
        return None
    path = unquote(parts.path)
    if not path:
        file = page
    elif path.startswith("/"):
        file = site_dir / path.lstrip("/")
    else:
        file = page.parent / path
    file = Path(os.path.normpath(file))
    if file.is_dir() or path.endswith("/"):
        file = file / "index.html"
    return file, unquote(parts.fragment)


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_no_raw_roles_or_unprocessed_links(site: tuple[Path, str]) -> None:
    site_dir, _ = site
    pages = _pages(site_dir)
    assert len(pages) >= 15  # the check is not vacuous: every page of the nav was built
    found = []
    for path, page in pages.items():
        text = "".join(page.text)
        for pattern in (ROLE, UNPROCESSED_AUTOREF):
            for match in pattern.finditer(text):
                context = text[max(0, match.start() - 40) : match.end() + 40].replace("\n", " ")
                found.append(f"{path.relative_to(site_dir)}: ...{context}...")
    assert found == [], f"{len(found)} unrendered references:\n" + "\n".join(found[:50])


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_every_internal_link_resolves(site: tuple[Path, str]) -> None:
    site_dir, _ = site
    pages = _pages(site_dir)
    broken = []
    checked = 0
    for path, page in pages.items():
        for ref in page.refs:
            target = _target(site_dir, path, ref)
            if target is None:
                continue
            file, anchor = target
            checked += 1
            where = f"{path.relative_to(site_dir)}: {ref!r}"
            if not file.is_file():
                broken.append(f"{where}: no file {file}")
            elif anchor and file.suffix == ".html":
                ids = pages[file].ids if file in pages else set()
                if anchor not in ids:
                    broken.append(f"{where}: no id {anchor!r} in {file.relative_to(site_dir)}")
    assert checked >= 500  # links between pages, into the API reference, and assets
    assert broken == [], f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_signatures_are_formatted(site: tuple[Path, str]) -> None:
    _, log = site
    assert UNFORMATTED_SIGNATURES not in log, "install the docs extra (it brings Ruff)"
