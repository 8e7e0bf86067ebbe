"""Every page of the documentation site as a reader sees it: Chromium at 1280 x 800.

The site is built (``mkdocs build --strict``) and served on 127.0.0.1; every page is
opened in headless Chromium, driven with Playwright through the system browser
(``chromium`` on PATH, or the one ``WSFRAMED_CHROMIUM`` names: no browser download).
A page fails when

* an element of its content (a table, a code block, an image, a diagram) is wider
  than the box it sits in: the reader would have to scroll it sideways or would
  not see its end; or the page itself is wider than the window;
* the browser logs an error, or a script throws;
* it asks for anything outside the site (a font or script from a CDN): the site
  must work offline.

Screenshots of the home, quickstart, API and performance pages are saved in
``$WSFRAMED_DOCS_SCREENSHOTS`` (default ``/tmp/wsframed-docs-screenshots``; ``.ci/run``
sets ``.ci-artifacts/docs-screenshots``, which CI keeps as artifacts). Without
Playwright or Chromium the tests skip and say why; under
``CI=true`` they fail instead, so CI cannot lose them silently.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .docs_site import BUILD_TIMEOUT, ROOT, build_site

WIDTH, HEIGHT = 1280, 800
SCREENSHOTS = Path(os.environ.get("WSFRAMED_DOCS_SCREENSHOTS", "/tmp/wsframed-docs-screenshots"))
SCREENSHOT_PAGES = ("index.md", "quickstart.md", "api.md", "performance.md")
PAGE_TIMEOUT = 60_000  # ms: loading one page on a loaded 2-core machine

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 120)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser check may not skip)")
    pytest.skip(reason)


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")


def _chromium() -> str:
    """The browser the interop tests use too: ``$WSFRAMED_CHROMIUM``, else the first of
    ``CHROMIUM_NAMES`` on PATH (``.ci/install-interop`` installs one in CI)."""
    override = os.environ.get("WSFRAMED_CHROMIUM")
    found = [override] if override else [shutil.which(name) for name in CHROMIUM_NAMES]
    for path in found:
        if path and os.access(path, os.X_OK):
            return path
    _unavailable(
        f"no Chromium: {override or ', '.join(CHROMIUM_NAMES)} not found "
        "(run .ci/install-interop, or set WSFRAMED_CHROMIUM to its path)"
    )


def _pages() -> list[str]:
    return sorted(path.name for path in (ROOT / "docs").glob("*.md"))


def _url_path(page: str) -> str:
    """Where mkdocs puts a page (``use_directory_urls``): ``x.md`` -> ``/x/``."""
    return "/" if page == "index.md" else f"/{page.removesuffix('.md')}/"


# What counts as too wide, computed in the page. An element of the article overflows
# when its box sticks out of the article's, or when it scrolls sideways (its content
# is wider than its box: Material wraps tables and code blocks in such scrollers).
# Hidden elements (zero size) are skipped.
_OVERFLOWS = """
() => {
  const article = document.querySelector("article.md-content__inner");
  if (!article) return ["no article element"];
  const limit = article.getBoundingClientRect().right + 1;
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    found.push(`the page: ${root.scrollWidth}px wide in a ${root.clientWidth}px window`);
  }
  const describe = (el) => {
    const text = (el.innerText || el.getAttribute("alt") || "").trim().split("\\n")[0];
    return `<${el.tagName.toLowerCase()}> "${text.slice(0, 60)}"`;
  };
  for (const el of article.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const style = getComputedStyle(el);
    if (["auto", "scroll", "hidden"].includes(style.overflowX)
        && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${describe(el)}: content ${el.scrollWidth}px in a ${el.clientWidth}px box`);
    } else if (box.right > limit && ["TABLE", "PRE", "IMG", "svg"].includes(el.tagName)) {
      found.push(`${describe(el)}: ends at ${Math.round(box.right)}px, past ${limit}px`);
    }
  }
  return found;
}
"""


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Build the site and serve it on 127.0.0.1; yield its base URL."""
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings_handlers.python  # noqa: F401
    except ImportError:
        _unavailable("the docs extra is not installed: pip install -e '.[docs]'")
    site_dir = tmp_path_factory.mktemp("site")
    try:
        build_site(site_dir)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mkdocs build took more than {BUILD_TIMEOUT} s")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's), driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    executable = _chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], timeout=PAGE_TIMEOUT
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("page", _pages())
def test_page_fits_1280px_without_errors(page: str, browser: Any, site_url: str) -> None:
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    outside: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith((site_url + "/", "data:", "blob:")):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    try:
        context.route("**/*", route)
        tab = context.new_page()

        def console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        tab.on("console", console)
        tab.on("pageerror", lambda exception: errors.append(f"uncaught: {exception}"))
        response = tab.goto(site_url + _url_path(page), wait_until="load", timeout=PAGE_TIMEOUT)
        assert response is not None
        assert response.status == 200, f"{page}: HTTP {response.status}"
        tab.evaluate("document.fonts.ready.then(() => true)")
        overflows = tab.evaluate(_OVERFLOWS)
        if page in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"{page.removesuffix('.md')}.png"
            tab.screenshot(path=str(shot), full_page=page == "index.md")
    finally:
        context.close()
    assert outside == [], f"{page} fetched from outside the site: {outside}"
    assert errors == [], f"{page}: console errors: {errors}"
    assert overflows == [], f"{page} is too wide at {WIDTH}px:\n" + "\n".join(overflows)
