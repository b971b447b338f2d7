"""How the site reads the series: notebooks copied in, Mermaid outputs as diagrams, exercises marked.

Three jobs, all at build time and none touching ``notebooks/``:

- ``copy_notebooks`` mirrors ``notebooks/0*.ipynb`` into ``docs/notebooks/`` (git-ignored), so
  each page's path inside the site (``notebooks/03_...``) is its path in the repository, which
  is what the Binder and JupyterHub launch links need.
- ``read`` is MyST-NB's reader for ``.ipynb`` (``nb_custom_formats``). The notebooks show a
  diagram as a ```` ```mermaid ```` Markdown output, which ``myst_fence_as_directive`` hands
  to sphinxcontrib-mermaid; ``read`` keeps its front matter and folds solution cells.
- ``fetch_mermaid`` puts a pinned ``mermaid`` release from the npm registry into the site's
  static files, so no page loads a script from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path

import nbformat

# A solution is a markdown cell tagged ``solution``: a ``<details><summary>Solution</summary>``
# block around one ```python fence (labkit/authoring/exercises.py, SOLUTION_FORM; the site
# builds from docs/requirements.txt alone, so the pattern is repeated here, not imported).
SOLUTION_TAG = "solution"
SOLUTION_FORM = re.compile(
    r"\A<details><summary>Solution</summary>\n\n```python\n(?P<code>.*?)\n```\n(?P<why>.*?)</details>\s*\Z",
    re.DOTALL)


# --------------------------------------------------------------------------- notebooks

def copy_notebooks(source: Path, dest: Path, pattern: str = "0*.ipynb") -> list[Path]:
    """Mirror the numbered notebooks into ``dest`` (stale copies removed); return the copies."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copies = []
    for notebook in sorted(source.glob(pattern)):
        copies.append(Path(shutil.copy2(notebook, dest / notebook.name)))
    return copies


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


# MyST reads a leading ``---`` block in a directive's body as the directive's options, so a
# diagram's front matter (``title: "..."``) would be taken from Mermaid and handed back
# unquoted by sphinxcontrib-mermaid. After a blank line it stays part of the diagram.
_MERMAID_FRONT_MATTER = re.compile(r"^(```mermaid[ \t]*\n)(---[ \t]*\n)", re.MULTILINE)


def _keep_front_matter(markdown: str) -> str:
    """Return Markdown whose ```mermaid blocks keep their front matter as part of the diagram."""
    return _MERMAID_FRONT_MATTER.sub(r"\1\n\2", markdown)


def _fold_solution(cell: dict) -> None:
    """Show a solution cell as MyST-NB shows a hidden code cell: marked ``tag_solution``, folded.

    The page then has what the exercise and self-check cells have (a ``.cell.tag_solution``
    block, marked by _static/series.css), and the code opens only on a click.
    """
    found = SOLUTION_FORM.match(cell.source) if SOLUTION_TAG in cell.metadata.get("tags", []) else None
    if found is None:
        return
    # Raw HTML around the fence: docutils would turn a container's class tag_solution into
    # tag-solution, and the site's CSS and tests look for MyST-NB's own class names.
    why = found["why"].strip()
    cell.source = (
        '<div class="cell tag_solution docutils container"><details class="hide"><summary>Solution</summary>\n'
        '<div class="cell_input docutils container">\n\n'
        f"```ipython3\n{found['code']}\n```\n\n</div>\n\n"  # IPython: a solution may hold !alembic
        + (f"{why}\n\n" if why else "")
        + "</details></div>\n")


def read(text: str) -> nbformat.NotebookNode:
    """Read a notebook for the site: Mermaid outputs made renderable, solutions folded."""
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            # In the repository a notebook links to ../docs/x.md; its copy sits in docs/notebooks/.
            cell.source = _keep_front_matter(cell.source).replace("](../docs/", "](../")
            _fold_solution(cell)
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data:
                data["text/markdown"] = _keep_front_matter(_text(data["text/markdown"]))
    return nb


# --------------------------------------------------------------------------- mermaid.js

def _verify(blob: bytes, integrity: str, source: Path) -> None:
    algorithm, expected = integrity.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, blob).digest()).decode()
    if actual != expected:
        raise DownloadError(f"The mermaid tarball ({source}) does not match its pinned {algorithm} "
                            f"hash in docs/conf.py. Delete it and build again.")


class DownloadError(Exception):
    """mermaid could not be fetched or did not match its pinned hash (the message says what to do)."""


# What the site needs from the mermaid package: the ES module sphinxcontrib-mermaid imports, its
# chunks, and the classic build that draws the diagrams when the site is opened from a file://
# path (browsers refuse ES modules there).
MERMAID_FILES = ("package/dist/mermaid.esm.min.mjs", "package/dist/mermaid.min.js")
MERMAID_CHUNKS = "package/dist/chunks/mermaid.esm.min/"


def _wanted(name: str) -> bool:
    return name in MERMAID_FILES or (name.startswith(MERMAID_CHUNKS) and name.endswith(".mjs"))


def fetch_mermaid(version: str, integrity: str, cache: Path) -> Path:
    """Return a folder for ``html_static_path`` holding ``mermaid/`` from the npm registry's tarball.

    The tarball is downloaded once into ``cache`` and checked against the pinned hash.
    """
    static = cache / f"mermaid-{version}"
    if all((static / "mermaid" / f.removeprefix("package/dist/")).is_file() for f in MERMAID_FILES):
        return static
    tarball = cache / f"mermaid-{version}.tgz"
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/mermaid/-/mermaid-{version}.tgz"
    if tarball.is_file():
        blob = tarball.read_bytes()
    else:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                blob = response.read()
        except OSError as exc:
            raise DownloadError(
                f"Could not download mermaid {version} from the npm registry ({url}): {exc}.\n"
                f"The site serves its own copy of mermaid.js: build once with access to the registry, "
                f"or put the tarball at {tarball} (npm pack mermaid@{version})."
            ) from None
    _verify(blob, integrity, tarball)
    cache.mkdir(parents=True, exist_ok=True)
    tarball.write_bytes(blob)
    work = static.with_name(static.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and _wanted(member.name):
                target = work / "mermaid" / member.name.removeprefix("package/dist/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    shutil.rmtree(static, ignore_errors=True)
    work.rename(static)
    return static
