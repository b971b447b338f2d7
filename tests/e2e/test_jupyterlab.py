"""Every notebook runs in the real JupyterLab UI, in headless Chromium, as a learner runs it.

nbval proves the outputs match; it never opens JupyterLab. These tests open each notebook
in the browser, press Run All, wait until the kernel is idle, and then check what the
learner sees: no error outside cells tagged ``raises-exception``, the before/after tables,
and the Mermaid diagrams drawn as pictures rather than left as source or a parse error.
"""

from __future__ import annotations

import re

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the browser fixture fails with an install hint
    PlaywrightTimeout = TimeoutError

from lab_paths import SCREENSHOTS, notebook_sources

pytestmark = pytest.mark.browser

NOTEBOOKS = notebook_sources()
RUN_TIMEOUT_MS = 300_000   # Run All, per notebook (notebook 7 writes a million rows)
LOAD_TIMEOUT_MS = 90_000   # the page, the notebook and its kernel
RENDER_TIMEOUT_MS = 30_000  # Mermaid draws asynchronously after the outputs arrive

APP_READY = """() => {
  const app = window.jupyterapp, w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.context || !w.context.isReady || !w.sessionContext) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""

# Done when the kernel is idle and no cell is queued or running, and either every code cell
# has run or one not tagged raises-exception failed (Run All stops there).
RUN_DONE = """() => {
  const w = window.jupyterapp.shell.currentWidget, cells = w.content.model.cells;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k || k.status !== 'idle') return false;
  let all = true, stopped = false;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    if (c.executionState === 'running') return false;
    if (!c.executionCount) all = false;
    const tags = c.getMetadata('tags') || [];
    const j = c.toJSON();
    if ((j.outputs || []).some(o => o.output_type === 'error') && !tags.includes('raises-exception'))
      stopped = true;
  }
  return all || stopped;
}"""

CELLS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells, out = [];
  for (let i = 0; i < cells.length; i++) out.push(cells.get(i).toJSON());
  return out;
}"""

MERMAID_DONE = """(expected) => {
  const nb = window.jupyterapp.shell.currentWidget.content.node;
  const found = nb.querySelectorAll('.jp-RenderedMermaid');
  if (found.length < expected) return false;
  return Array.from(found).every(m => m.classList.contains('jp-mod-warning') ||
    Array.from(m.querySelectorAll('img')).some(img => img.complete && img.naturalWidth > 0));
}"""

MERMAID = """() => Array.from(window.jupyterapp.shell.currentWidget.content.node
    .querySelectorAll('.jp-RenderedMermaid')).map(m => {
  const img = m.querySelector('img');
  return {warning: m.classList.contains('jp-mod-warning'), text: m.innerText.slice(0, 300),
          svg: !!img && img.src.startsWith('data:image/svg+xml'),
          width: img ? img.naturalWidth : 0, height: img ? img.naturalHeight : 0};
})"""

TABLES = """() => Array.from(window.jupyterapp.shell.currentWidget.content.node
    .querySelectorAll('.jp-OutputArea-output.jp-RenderedHTML table')).map(t => ({
  headers: Array.from(t.querySelectorAll('thead tr')).map(r =>
      Array.from(r.querySelectorAll('th')).map(th => th.innerText.trim())),
  rows: t.querySelectorAll('tbody tr').length,
  visible: t.getBoundingClientRect().width > 0,
}))"""

# The cells' height (the scroller's own height would add the scroll-past-end padding).
NOTEBOOK_HEIGHT = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content.node;
  const viewport = nb.querySelector('.jp-WindowedPanel-viewport') || nb;
  return viewport.scrollHeight;
}"""

SCROLL_TOP = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = 0;
  nb.node.querySelectorAll('.jp-WindowedPanel-outer').forEach(e => { e.scrollTop = 0; });
  nb.node.scrollTop = 0;
}"""


def _mermaid_sources(cells: list[dict]) -> int:
    """Count the ```mermaid blocks the notebook shows: in markdown cells and in markdown outputs."""
    count = 0
    for cell in cells:
        texts = [cell["source"]] if cell["cell_type"] == "markdown" else [
            o.get("data", {}).get("text/markdown", "") for o in cell.get("outputs", [])]
        for text in texts:
            text = "".join(text) if isinstance(text, list) else text
            count += len(re.findall(r"^```mermaid\s*$", text, flags=re.MULTILINE))
    return count


def _first_line(cell: dict) -> str:
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return source.strip().splitlines()[0][:80] if source.strip() else "(empty)"


def _is_before_after(table: dict) -> bool:
    """Whether a rendered table is a before/after view: frames side by side under a top header naming 'after'.

    The side labelled 'before' is left out where there was no table before (notebook 1).
    """
    top = " ".join(table["headers"][0]).lower() if table["headers"] else ""
    return len(table["headers"]) >= 2 and "after" in top


def _screenshot(page, name: str) -> None:
    """Save the whole notebook: grow the window to its height (capped), then capture the page."""
    height = min(page.evaluate(NOTEBOOK_HEIGHT) + 250, 16_000)  # + menu, toolbar, status bar
    page.set_viewport_size({"width": 1400, "height": max(height, 1000)})
    page.wait_for_timeout(500)  # let JupyterLab lay out the taller window
    page.evaluate(SCROLL_TOP)  # Run All leaves the last cell in view
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    for i, figure in enumerate(page.locator(".jp-RenderedMermaid").all(), 1):
        figure.screenshot(path=str(SCREENSHOTS / f"{name}-mermaid-{i}.png"))


def test_the_series_has_every_notebook():
    """The browser tests are only proof if they see the whole series; an empty list would prove nothing.

    The series is the numbered notebooks 01, 02, ... with no gap, as many as notebooks/ holds.
    """
    names = [p.name for p in NOTEBOOKS]
    numbers = [int(name[:2]) for name in names if name[:2].isdigit()]
    assert len(names) >= 5, f"expected the whole series in notebooks/, found {names}"
    assert numbers == list(range(1, len(names) + 1)), f"expected 01_*.ipynb, 02_*.ipynb, ... without a gap: {names}"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(source, browser, lab_server):
    """Open the notebook in JupyterLab, Run All, and check errors, tables and Mermaid diagrams."""
    page = browser.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    try:
        # A workspace of its own per notebook, so no tab from an earlier test is restored.
        page.goto(f"{lab_server.url}/lab/workspaces/e2e-{source.stem}/tree/{source.name}"
                  f"?reset&token={lab_server.token}")
        page.wait_for_function(APP_READY, timeout=LOAD_TIMEOUT_MS)
        page.evaluate("window.jupyterapp.shell.collapseLeft()")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(RUN_DONE, timeout=RUN_TIMEOUT_MS, polling=500)
        except PlaywrightTimeout:
            page.screenshot(path=str(SCREENSHOTS / f"{source.stem}-timeout.png"))
            pending = [i for i, c in enumerate(page.evaluate(CELLS))
                       if c["cell_type"] == "code" and not c.get("execution_count")]
            pytest.fail(f"{source.name}: Run All did not finish within {RUN_TIMEOUT_MS // 1000} s; "
                        f"code cells not run: {pending}\n{lab_server.log_tail()}")

        cells = page.evaluate(CELLS)
        expected_mermaid = _mermaid_sources(cells)
        if expected_mermaid:
            try:
                page.wait_for_function(MERMAID_DONE, arg=expected_mermaid, timeout=RENDER_TIMEOUT_MS)
            except PlaywrightTimeout:
                pass  # the assertions below say what is missing
        mermaid, tables = page.evaluate(MERMAID), page.evaluate(TABLES)
        _screenshot(page, source.stem)
    finally:
        page.close()
        lab_server.shutdown_kernels()

    code = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    not_run = [f"cell {i}: {_first_line(c)}" for i, c in code if not c.get("execution_count")]
    unexpected = [
        f"cell {i} ({_first_line(c)}): {o.get('ename')}: {o.get('evalue')}"
        for i, c in code for o in c.get("outputs", [])
        if o["output_type"] == "error" and "raises-exception" not in c["metadata"].get("tags", [])
    ]
    assert not unexpected, f"{source.name}: errors outside raises-exception cells:\n" + "\n".join(unexpected)
    assert not not_run, f"{source.name}: cells Run All did not reach:\n" + "\n".join(not_run)
    # A tagged cell demonstrates a failure (a refused downgrade); if it stops failing, the lesson broke.
    silent = [f"cell {i}: {_first_line(c)}" for i, c in code
              if "raises-exception" in c["metadata"].get("tags", [])
              and not any(o["output_type"] == "error" for o in c.get("outputs", []))]
    assert not silent, f"{source.name}: cells tagged raises-exception raised nothing:\n" + "\n".join(silent)

    filled = [t for t in tables if t["rows"] and t["visible"]]
    assert len(filled) >= 2, f"{source.name}: expected at least two rendered tables, got {tables}"
    assert any(_is_before_after(t) for t in filled), (
        f"{source.name}: no before/after table; headers seen: {[t['headers'][:1] for t in filled]}")

    # A notebook that draws the lab's diagrams must show them; notebook 5 (your own project) and
    # notebook 7 (big tables) draw none.
    draws = "_diagram(" in source.read_text()
    assert expected_mermaid >= 1 or not draws, f"{source.name}: shows no ```mermaid diagram"
    broken = [m["text"] for m in mermaid if m["warning"]]
    assert not broken, f"{source.name}: Mermaid could not draw:\n" + "\n---\n".join(broken)
    drawn = [m for m in mermaid if m["svg"] and m["width"] > 0 and m["height"] > 0]
    assert len(drawn) == expected_mermaid, (
        f"{source.name}: {expected_mermaid} ```mermaid blocks, {len(drawn)} drawn as SVG: {mermaid}")
    assert not console_errors, f"{source.name}: uncaught errors in the page: {console_errors}"
