"""Build the series' website with Sphinx and serve it on 127.0.0.1, for tests/e2e/test_site.py.

The build runs the README's command (``python -m sphinx -W -b html docs OUT``) in a
subprocess, so a warning fails it exactly as it fails for a publisher. The output goes under
the git-ignored ``docs/_build/``.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import nbformat

from lab_paths import REPO

DOCS = REPO / "docs"
OUT = DOCS / "_build" / "e2e" / "html"
# What the site's build needs beyond requirements.txt (docs/requirements.txt installs them).
DOCS_MODULES = ("sphinx", "myst_nb", "sphinx_book_theme", "sphinxcontrib.mermaid")
# A hub for the JupyterHub launch link; the link is built, never followed.
TEST_HUB = "https://hub.example.org"


def missing_modules() -> list[str]:
    """Return the site-building modules that are not importable here."""
    missing = []
    for name in DOCS_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def build(env: dict) -> subprocess.CompletedProcess:
    """Build the site from scratch into OUT with warnings as errors; return the finished process."""
    shutil.rmtree(OUT.parent, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-d", str(OUT.parent / "doctrees"), str(DOCS), str(OUT)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


class _QuietHandler(SimpleHTTPRequestHandler):
    # Every platform serves ES modules as JavaScript (browsers refuse modules sent as anything else).
    extensions_map: ClassVar[dict] = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript"}

    def log_message(self, *args):  # the test reports what matters; no line per request
        pass


class SiteServer:
    """The built site over HTTP on 127.0.0.1 (a free port), in a thread of the test process."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- what the sources hold

def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def notebook_expectations(path: Path) -> dict:
    """What a notebook's page must show, read from the committed notebook itself.

    Returns the number of Mermaid diagrams (```mermaid in Markdown cells and outputs),
    the number of before/after tables, the cell tags that the
    site marks, and every Styler colour rule in the HTML outputs as (element id, CSS
    background colour) pairs.
    """
    nb = nbformat.read(path, as_version=4)
    diagrams, before_after, colours = 0, 0, []
    tags = {"exercise": 0, "solution": 0, "self-check": 0}
    fence = re.compile(r"^```\s*\{?mermaid\}?\s*$", re.MULTILINE)
    for cell in nb.cells:
        for tag in cell.metadata.get("tags", []):
            if tag in tags:
                tags[tag] += 1
        if cell.cell_type == "markdown":
            diagrams += len(fence.findall(_text(cell.source)))
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                diagrams += len(fence.findall(_text(data["text/markdown"])))
            before_after += _is_before_after(_text(data.get("text/html")))
            for style in re.findall(r"<style[^>]*>(.*?)</style>", _text(data.get("text/html")), re.S):
                for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", style):
                    colour = re.search(r"background-color:\s*(#[0-9a-fA-F]{6})", body)
                    if colour:
                        colours += [(s.strip()[1:], colour.group(1).lower())
                                    for s in selectors.split(",") if re.fullmatch(r"#[\w-]+", s.strip())]
    return {"diagrams": diagrams, "before_after": before_after, "tags": tags, "colours": colours}


def _is_before_after(html: str) -> bool:
    """Whether an HTML output is a before/after table: two header rows, the top one naming 'after'."""
    head = re.search(r"<thead>(.*?)</thead>", html, re.S)
    rows = re.findall(r"<tr.*?</tr>", head.group(1), re.S) if head else []
    return len(rows) >= 2 and "after" in re.sub(r"<[^>]+>", " ", rows[0]).lower()


def markdown_diagrams(path: Path) -> int:
    """Count the Mermaid diagrams a Markdown page of the site declares."""
    return len(re.findall(r"^```\s*\{?mermaid\}?\s*$", path.read_text(), flags=re.MULTILINE))
