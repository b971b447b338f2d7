"""The series as a website: built with the README's command, read in headless Chromium, offline.

The site is built once per session with warnings as errors (``-W``) into the git-ignored
``docs/_build/e2e/``, served on 127.0.0.1, and every page is opened in the same Chromium,
with the same flags, as the JupyterLab tests. Each page must load with no console error,
no request may leave 127.0.0.1, and every Mermaid diagram must be drawn as an SVG. Notebook
pages must also keep the Styler colours of their before/after tables, mark the exercise,
solution and self-check cells, keep solutions folded until clicked, and offer launch links.
Screenshots go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import pytest

import site_build
from lab_paths import REPO, SCREENSHOTS
from support.prerequisites import skip_or_fail

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
PHASES = NOTEBOOKS[:4]  # one notebook per phase; a capstone after them need not show tables
DOC_PAGES = sorted(p.stem for p in (REPO / "docs").glob("*.md"))
PAGES = ([f"notebooks/{p.stem}" for p in NOTEBOOKS] + DOC_PAGES + ["search", "genindex"])
LOAD_TIMEOUT_MS = 30_000
RENDER_TIMEOUT_MS = 30_000  # Mermaid draws after the page has loaded

# Every .mermaid element: drawn (an <svg> that is not Mermaid's own error picture) and its size.
MERMAID = """() => Array.from(document.querySelectorAll('.mermaid')).map(m => {
  const svg = m.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : null;
  return {svg: !!svg, error: !!svg && (svg.getAttribute('aria-roledescription') === 'error'
                                      || /Syntax error/.test(svg.textContent)),
          width: box ? box.width : 0, height: box ? box.height : 0,
          source: (m.getAttribute('data-original-code') || m.textContent).slice(0, 120)};
})"""
MERMAID_DONE = """() => Array.from(document.querySelectorAll('.mermaid'))
  .every(m => m.getAttribute('data-processed') === 'true' || m.querySelector('svg'))"""

# The computed background of each element id that a Styler rule colours.
BACKGROUNDS = """(ids) => ids.map(id => {
  const el = document.getElementById(id);
  return el ? getComputedStyle(el).backgroundColor : null;
})"""

# Before/after tables: a two-level header whose top row names 'after' (the diff view's shape).
BEFORE_AFTER = """() => Array.from(document.querySelectorAll('.cell_output table')).filter(t => {
  const rows = t.querySelectorAll('thead tr');
  return rows.length >= 2 && /after/i.test(rows[0].innerText) && t.querySelectorAll('tbody tr').length > 0
    && t.getBoundingClientRect().width > 0;
}).length"""

# The label each marked cell shows (CSS ::before), per tag, and whether it is on screen.
MARKS = """(tag) => Array.from(document.querySelectorAll('.cell.tag_' + tag)).map(c => ({
  label: getComputedStyle(c, '::before').content,
  visible: c.getBoundingClientRect().height > 0,
}))"""

SOLUTIONS = """() => Array.from(document.querySelectorAll('.cell.tag_solution')).map(c => {
  const d = c.querySelector('details'), code = c.querySelector('.cell_input');
  return {details: !!d, open: !!d && d.open,
          codeShown: !!code && code.checkVisibility({checkVisibilityCSS: true})};
})"""


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="session")
def site():
    """Build the site with the README's command (-W) and serve it on 127.0.0.1; yield the server.

    Without the docs packages the tests fail when CI=true and are skipped elsewhere, with
    the install command in the reason (pytest runs with -rs).
    """
    missing = site_build.missing_modules()
    if missing:
        hint = (f"The website tests need the docs packages ({', '.join(missing)} missing): "
                "pip install -r docs/requirements.txt")
        skip_or_fail("NO DOCS PACKAGES, the website tests did not run. " + hint)
    env = dict(os.environ, SITE_JUPYTERHUB_URL=site_build.TEST_HUB, PYTHONDONTWRITEBYTECODE="1")
    built = site_build.build(env)
    if built.returncode != 0:
        pytest.fail(f"the site build failed (warnings are errors):\n{built.stderr[-4000:]}",
                    pytrace=False)
    with site_build.SiteServer(site_build.OUT) as server:
        yield server


@pytest.fixture
def page(browser, site):
    """A fresh tab that records console errors, failed responses and every request off 127.0.0.1.

    Requests to anywhere but the test server are aborted, so nothing leaves the machine.
    """
    tab = browser.new_page()
    tab.set_default_timeout(LOAD_TIMEOUT_MS)
    tab.errors, tab.outside = [], []
    local = (site.url + "/", site_build.OUT.as_uri() + "/", "data:", "blob:")

    def route(request_route):
        url = request_route.request.url
        if url.startswith(local):
            request_route.continue_()
        else:
            tab.outside.append(url)
            request_route.abort()

    tab.route("**/*", route)
    tab.on("console", lambda m: m.type == "error" and tab.errors.append(f"console: {m.text}"))
    tab.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    tab.on("response", lambda r: r.status >= 400 and tab.errors.append(f"HTTP {r.status}: {r.url}"))
    yield tab
    tab.close()


def _open(page, site, name: str) -> None:
    page.goto(f"{site.url}/{name}.html")
    page.wait_for_load_state("networkidle")


def _draw_every_diagram(page) -> list[dict]:
    """Open every folded section, bring each diagram into view (hidden ones draw lazily), and wait."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    for diagram in page.locator(".mermaid").all():
        diagram.scroll_into_view_if_needed()
    try:
        page.wait_for_function(MERMAID_DONE, timeout=RENDER_TIMEOUT_MS)
    except Exception:  # a diagram that never draws: the assertions below say which
        pass
    page.wait_for_timeout(300)
    return page.evaluate(MERMAID)


# Every image on the page, and whether the browser could decode it (a missing plot shows here).
IMAGES = """() => Array.from(document.images).filter(i => i.checkVisibility())
  .map(i => ({src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0}))"""


def _expected_diagrams(name: str) -> int:
    if name.startswith("notebooks/"):
        return site_build.notebook_expectations(REPO / f"{name}.ipynb")["diagrams"]
    source = REPO / "docs" / f"{name}.md"
    return site_build.markdown_diagrams(source) if source.is_file() else 0


def test_every_numbered_notebook_and_doc_is_a_page(site):
    """A notebook or doc left out of the toctree or the build would go unnoticed without this."""
    assert len(NOTEBOOKS) >= 4, f"expected notebooks/01..04_*.ipynb at least, found {NOTEBOOKS}"
    missing = [name for name in PAGES if not (site_build.OUT / f"{name}.html").is_file()]
    assert not missing, f"pages missing from the build: {missing}"
    index = (site_build.OUT / "index.html").read_text()
    unlinked = [name for name in PAGES[:-2] if name != "index" and f'href="{name}.html' not in index]
    assert not unlinked, f"pages the landing page's table of contents does not link: {unlinked}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline(name, page, site):
    """The page loads with no console error, fetches nothing from outside, and draws its diagrams."""
    _open(page, site, name)
    diagrams = _draw_every_diagram(page)
    page.screenshot(path=str(SCREENSHOTS / f"site-{name.replace('/', '-')}.png"), full_page=True)

    assert not page.outside, f"{name}: requests that left 127.0.0.1: {page.outside}"
    assert not page.errors, f"{name}: errors in the browser:\n" + "\n".join(page.errors)
    expected = _expected_diagrams(name)
    assert len(diagrams) == expected, (
        f"{name}: the source has {expected} Mermaid diagrams, the page has {len(diagrams)}")
    not_drawn = [d for d in diagrams if not d["svg"] or d["error"] or not (d["width"] and d["height"])]
    assert not not_drawn, f"{name}: diagrams not drawn as an SVG picture: {not_drawn}"
    broken = [i["src"] for i in page.evaluate(IMAGES) if not i["loaded"]]
    assert not broken, f"{name}: images the browser could not show: {broken}"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page(source, page, site):
    """Coloured before/after tables, marked exercise cells, folded solutions, and launch links."""
    expect = site_build.notebook_expectations(source)
    _open(page, site, f"notebooks/{source.stem}")

    # The before/after tables are there, and their Styler <style> survived: each coloured
    # cell has its colour in the browser.
    if source in PHASES:
        missing = f"{source.name}: a phase notebook without a coloured before/after table: {expect}"
        assert expect["before_after"], missing
        assert expect["colours"], missing
    assert page.evaluate(BEFORE_AFTER) == expect["before_after"], (
        f"{source.name}: {expect['before_after']} before/after tables in the notebook, "
        f"{page.evaluate(BEFORE_AFTER)} on the page")
    ids = [element for element, _ in expect["colours"]]
    seen = page.evaluate(BACKGROUNDS, ids)
    wrong = [(element, colour, got) for (element, colour), got in zip(expect["colours"], seen, strict=True)
             if got != _rgb(colour)]
    assert not wrong, f"{source.name}: Styler colours lost (id, expected, computed): {wrong[:5]}"

    # Exercise, solution and self-check cells are labelled, one mark per tagged cell.
    for tag, label in (("exercise", "Exercise"), ("solution", "Solution"), ("self-check", "Self-check")):
        marks = page.evaluate(MARKS, tag)
        assert len(marks) == expect["tags"][tag], (source.name, tag, marks, expect["tags"])
        assert all(label in m["label"] and m["visible"] for m in marks), (source.name, tag, marks)

    # Solutions are folded until the reader clicks; one click shows the code.
    solutions = page.evaluate(SOLUTIONS)
    assert all(s["details"] and not s["open"] and not s["codeShown"] for s in solutions), (
        f"{source.name}: solutions not folded: {solutions}")
    if solutions:
        toggle = page.locator(".cell.tag_solution summary").first
        toggle.scroll_into_view_if_needed()
        toggle.click()
        assert page.evaluate(SOLUTIONS)[0]["codeShown"], f"{source.name}: a click did not show the solution"

    # Launch links: Binder, and the JupyterHub (nbgitpuller) link for the configured hub.
    links = {a["text"]: a["href"] for a in page.evaluate(
        "() => Array.from(document.querySelectorAll('.launch-bar a'))"
        ".map(a => ({text: a.innerText.trim(), href: a.href}))")}
    path = f"notebooks/{source.name}"
    assert page.locator(".launch-bar").is_visible(), f"{source.name}: no launch bar in view"
    binder = urlsplit(links.get("Binder", ""))
    assert binder.netloc == "mybinder.org", links
    assert binder.path.startswith("/v2/gh/"), links
    assert parse_qs(binder.query)["urlpath"] == [f"lab/tree/{path}"], links
    hub = urlsplit(links.get("JupyterHub", ""))
    assert f"{hub.scheme}://{hub.netloc}" == site_build.TEST_HUB, links
    assert hub.path == "/hub/user-redirect/git-pull", links
    query = parse_qs(hub.query)
    repo_name = query["repo"][0].rstrip("/").rsplit("/", 1)[-1]
    assert query["urlpath"] == [f"lab/tree/{repo_name}/{path}"], links
    assert query["branch"], links
    assert not page.outside, (page.outside, page.errors)
    assert not page.errors, (page.outside, page.errors)


def test_diagrams_draw_when_opened_from_a_file_path(page, site):
    """A site copied to a laptop and opened as files still draws its diagrams (the classic build).

    Browsers refuse ES modules from file:// paths, so the module loader fails there with a
    console error; the fallback in docs/_static/mermaid-file-fallback.js must draw instead.
    """
    page.goto((site_build.OUT / "notebooks" / "03_rename_without_losing_data.html").as_uri())
    page.wait_for_load_state("load")
    diagrams = _draw_every_diagram(page)
    expected = _expected_diagrams("notebooks/03_rename_without_losing_data")
    assert len(diagrams) == expected, (expected, diagrams)
    assert expected >= 1, (expected, diagrams)
    assert all(d["svg"] and not d["error"] and d["width"] for d in diagrams), diagrams
    assert not page.outside, f"requests that left the machine: {page.outside}"


def test_search_finds_alter_column_on_notebook_3(page, site):
    """Full-text search works offline: typing alter_column on the search page lists notebook 3."""
    _open(page, site, "search")
    box = page.locator("input[name=q]:visible").first
    box.fill("alter_column")
    box.press("Enter")
    page.wait_for_url("**/search.html?q=alter_column*")
    results = page.locator("#search-results li a")
    results.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    hrefs = [a.get_attribute("href") for a in results.all()]
    page.screenshot(path=str(SCREENSHOTS / "site-search-alter_column.png"), full_page=True)
    assert any(h.startswith("notebooks/03_rename_without_losing_data.html") for h in hrefs), hrefs
    assert not page.outside, (page.outside, page.errors)
    assert not page.errors, (page.outside, page.errors)
