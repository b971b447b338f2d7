"""Sphinx configuration: the series as a website (Sphinx + MyST-NB + sphinx-book-theme).

Build it from the repository root (see the README):

    pip install -r docs/requirements.txt && python -m sphinx -W -b html docs docs/_build/html

The notebooks are rendered from their committed outputs, never re-executed (nbval already
proves those outputs are current). The settings a publisher changes are at the top, and
each can also come from an environment variable.
"""

from __future__ import annotations

import os
import sys
from html import escape
from pathlib import Path
from typing import ClassVar

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import catalogue_page
from IPython.lib.lexers import IPython3Lexer
from pygments.lexer import inherit
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.lexers.sql import PostgresLexer
from pygments.token import Keyword
from pygments.util import ClassNotFound

import site_notebooks

# --------------------------------------------------------------------------- publisher settings

# The repository the launch links (Binder, JupyterHub) and the repository button point at.
REPOSITORY_URL = os.environ.get("SITE_REPOSITORY_URL", "https://github.com/database-evolution/database-evolution")
REPOSITORY_BRANCH = os.environ.get("SITE_REPOSITORY_BRANCH", "main")
BINDERHUB_URL = os.environ.get("SITE_BINDERHUB_URL", "https://mybinder.org")
# An instructor's JupyterHub with nbgitpuller: a "JupyterHub" launch link appears when set.
JUPYTERHUB_URL = os.environ.get("SITE_JUPYTERHUB_URL", "")

# mermaid.js, served from the site itself: this release from the npm registry, checked by hash
# (`npm view mermaid@VERSION dist.integrity`). It matches sphinxcontrib-mermaid's default.
MERMAID_VERSION = "11.12.1"
MERMAID_INTEGRITY = (
    "sha512-UlIZrRariB11TY1RtTgUWp65tphtBv4CSq7vyS2ZZ2TgoMjs2nloq+wFqxiwcxlhHUvs7DPGgMjs2aeQxz5h9g=="
)

# --------------------------------------------------------------------------- project

project = "Database Evolution"
author = "the Database Evolution authors"
copyright = "the Database Evolution authors"
html_show_copyright = False  # the footer says "By" the authors already

extensions = ["myst_nb", "sphinxcontrib.mermaid"]

exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints"]

# --------------------------------------------------------------------------- notebooks and Markdown

nb_execution_mode = "off"            # render the committed outputs
nb_custom_formats = {".ipynb": "site_notebooks.read"}  # Mermaid outputs, collapsed solutions
nb_merge_streams = True              # one block per cell for stdout, as JupyterLab shows it
nb_render_markdown_format = "myst"   # Markdown outputs parsed as MyST, so ```mermaid becomes a diagram
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3             # links like guide.md#a-heading resolve
myst_fence_as_directive = ["mermaid"]  # ```mermaid in Markdown and in outputs -> a diagram

# --------------------------------------------------------------------------- Mermaid, offline

mermaid_use_local = "mermaid/mermaid.esm.min.mjs"  # under _static/, never a CDN
mermaid_init_config = {"startOnLoad": False}
mermaid_height = "auto"  # each diagram as tall as its width needs, not a fixed 500px box
mermaid_fullscreen_button = "↗"  # the default ⛶ is missing from many fonts
html_static_path = ["_static"]  # and mermaid's own files, added by prepare_sources()

# --------------------------------------------------------------------------- HTML

html_theme = "sphinx_book_theme"
html_title = "Database Evolution"
html_css_files = ["series.css"]
html_js_files = ["mermaid-file-fallback.js"]  # diagrams also when opened from a file:// path
html_favicon = "_static/favicon.svg"
# Light, as JupyterLab shows the tables and diagrams (the reader can switch). Without a default
# the theme logs "Got invalid theme mode" as a console error on a reader's first visit.
html_context = {"default_mode": "light"}
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": REPOSITORY_BRANCH,
    "path_to_docs": "",  # a notebook page's path in the site is its path in the repository
    "use_repository_button": True,
    "use_download_button": True,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "launch_buttons": {
        "binderhub_url": BINDERHUB_URL,
        "jupyterhub_url": JUPYTERHUB_URL,
        "notebook_interface": "jupyterlab",
    },
}


class PsqlScriptLexer(PostgresLexer):
    """PostgreSQL's SQL plus psql's backslash commands (``\\connect``, ``\\gexec``).

    Used for ```sql blocks: the generic SQL lexer stops at plpgsql's ``$$`` bodies and at
    psql commands with a warning, and ``-W`` turns a warning into a failed build.
    """

    name, aliases = "PostgreSQL script", ["psql-script"]
    tokens: ClassVar[dict] = {"root": [(r"\\[a-zA-Z]+", Keyword.Pseudo), inherit]}


class NotebookCellLexer(IPython3Lexer):
    """IPython 3, except that a ``%%writefile`` cell is lexed as the file it writes.

    Notebook 9 writes a GitHub workflow that way: YAML with ``${{ }}``, which the IPython lexer
    fails on with a warning, and ``-W`` turns a warning into a failed build.
    """

    name, aliases = "IPython 3 notebook cell", ["ipython3"]

    def get_tokens_unprocessed(self, text):
        first, newline, body = text.partition("\n")
        if not first.startswith("%%writefile"):
            yield from super().get_tokens_unprocessed(text)
            return
        yield 0, Keyword, first + newline
        try:
            inner = get_lexer_for_filename(first.split()[-1])
        except ClassNotFound:
            inner = TextLexer()
        for index, token, value in inner.get_tokens_unprocessed(body):
            yield index + len(first) + len(newline), token, value


def add_launch_bar(app, pagename, templatename, context, doctree):
    """Put the notebook's launch links (the theme's own, from the rocket menu) in view above it."""
    groups = [b for b in context.get("header_buttons", []) if b.get("label") == "launch-buttons"]
    if not groups or "body" not in context:
        return
    links = " ".join(
        f'<a class="reference external launch-link" href="{escape(b["url"])}">{escape(b["text"])}</a>'
        for b in groups[0]["buttons"] if b.get("type") == "link"
    )
    bar = f'<p class="launch-bar">Run this notebook live: {links}</p>\n'
    context["body"] = bar + context["body"]


def prepare_sources(app, config):
    """Copy the notebooks in, write the catalogue's table, and put mermaid.js among the static files.

    The numbered notebooks are copied into docs/notebooks/ (git-ignored, rewritten on every
    build), so that a page's path in the site is its path in the repository.
    """
    site_notebooks.copy_notebooks(REPO / "notebooks", DOCS / "notebooks")
    # big-table-catalogue.md includes this: notebook 7's measured table, from its saved output.
    catalogue_page.write(REPO / "notebooks" / "07_big_tables_without_downtime.ipynb",
                         DOCS / "_build" / "generated" / "big-table-catalogue.md")
    try:
        mermaid = site_notebooks.fetch_mermaid(MERMAID_VERSION, MERMAID_INTEGRITY, DOCS / "_build" / "vendor")
    except site_notebooks.DownloadError as exc:
        # A short message and a failed build; Sphinx would wrap an exception in a long report.
        print(f"\nThe site cannot be built: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    config.html_static_path.append(str(mermaid))


def setup(app):
    app.connect("config-inited", prepare_sources)
    app.add_lexer("sql", PsqlScriptLexer)
    app.add_lexer("ipython3", NotebookCellLexer)
    app.connect("html-page-context", add_launch_bar, priority=510)  # after the theme builds its links
