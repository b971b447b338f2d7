"""What the learner sees: Mermaid diagrams of the schema and the revision graph, highlighted table diffs.

Every object here has two faces: a rich one for JupyterLab and GitHub (a ```mermaid block,
a coloured pandas Styler) and a plain-text one that nbval compares, so both are deterministic.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from collections.abc import Iterable, Mapping

import pandas as pd
import pgvector.sqlalchemy  # noqa: F401  (imported for its effect: reflection must know the vector type)
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql

from .. import database, paths, phases
from ..text import FRESH_DATE, TODAY

TABLES = ("users", "alembic_version")
ADDED, REMOVED = "(+)", "(-)"
COLOURS = {
    "added": "background-color: #d4edda; color: #155724",
    "renamed": "background-color: #fff3cd; color: #856404",
    "removed": "background-color: #f8d7da; color: #721c24; text-decoration: line-through",
}
SHORTEN = 40  # characters: long values (vectors) are cut so a table stays one screen wide


class Mermaid:
    """A Mermaid diagram: rendered from Markdown in JupyterLab 4.1+/GitHub, its source as plain text."""

    def __init__(self, source: str):
        self.source = source

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.source}\n```"

    def __repr__(self) -> str:
        return self.source


class RelativeStdout:
    """A stream for ``Config.stdout``: writes to sys.stdout with absolute paths relative, today's dates fixed.

    ``command.history(cfg, verbose=True)`` prints each revision's ``Path:``; through this
    stream a notebook shows ``workspace/...`` instead of a path that differs per machine.
    """

    encoding = "utf-8"

    def __init__(self, target=None):
        self.target = target

    def write(self, text: str) -> int:
        return (self.target or sys.stdout).write(FRESH_DATE.sub(TODAY, relative(text)))

    def flush(self) -> None:
        (self.target or sys.stdout).flush()


def relative(path_or_text) -> str:
    """Return a path (or text) with the repository's folder left out, e.g. workspace/lab/phase1/..."""
    text = str(path_or_text)
    for root, name in ((f"{paths.REPO}{os.sep}", ""), (str(paths.REPO), "."),
                       (f"{paths.workspace().parent}{os.sep}", ""),
                       (str(paths.data_root()), "<data folder>")):
        text = text.replace(root, name)
    return text


@contextlib.contextmanager
def relative_paths():
    """Within the block, print absolute paths of the repository and data folder as relative ones."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        print(relative(buffer.getvalue()), end="")


# --------------------------------------------------------------------------- schema diagram

def _label(value: str) -> str:
    """Return a highlight label with its marker: added -> '(+) added', removed -> '(-) removed'."""
    low = value.lower()
    if low.startswith("add") or low == "new":
        return f"{ADDED} {value}"
    if low.startswith("remov") or low.startswith("drop"):
        return f"{REMOVED} {value}"
    if low.startswith("renam"):
        return f"(~) {value}"
    return f"(*) {value}"


def _highlights(highlight) -> dict[str, str]:
    """Normalise ``highlight`` (None, names, or {name: label}) to {'table.column' or 'column': label}."""
    if highlight is None:
        return {}
    if isinstance(highlight, str):
        highlight = [highlight]
    if not isinstance(highlight, Mapping):
        highlight = {name: "changed" for name in highlight}
    return {name: _label(label) for name, label in highlight.items()}


def _mermaid_type(column: dict) -> str:
    text = column["type"].compile(dialect=postgresql.dialect())
    return text.replace(" ", "_").replace(",", "_").replace('"', "")


def _quote(text: str) -> str:
    return text.replace('"', "'")


def schema_diagram(highlight=None, title: str | None = None) -> Mermaid:
    """Return a Mermaid erDiagram of the live users/alembic_version tables, changed columns marked.

    ``highlight`` names changed columns (``["email"]``) or maps them to a label
    (``{"email": "added", "full_name": "renamed from name"}``); a key may be ``table.column``.
    A highlighted column that no longer exists is listed with type ``REMOVED``.
    """
    marks = _highlights(highlight)
    lines = ([f'---\ntitle: "{_quote(title)}"\n---'] if title else []) + ["erDiagram"]
    with database.engine().connect() as conn:
        insp = sa.inspect(conn)
        tables = [t for t in TABLES if insp.has_table(t)]
        if not tables:
            lines.append('    EMPTY_DATABASE["empty database: no users, no alembic_version"] {\n    }')
        for table in tables:
            pk = set(insp.get_pk_constraint(table).get("constrained_columns") or [])
            unique = {c for u in insp.get_unique_constraints(table) for c in u["column_names"]
                      if len(u["column_names"]) == 1}
            version = phases.current_revision(conn) if table == "alembic_version" else None
            lines.append(f"    {table} {{")
            present = []
            for col in insp.get_columns(table):
                name = col["name"]
                present.append(name)
                keys = ", ".join(k for k, on in (("PK", name in pk), ("UK", name in unique)) if on)
                notes = [n for n in (marks.get(f"{table}.{name}") or marks.get(name),
                                     "nullable" if col["nullable"] and name not in pk else None,
                                     f"holds {version}" if version else None) if n]
                note = f' "{_quote(", ".join(notes))}"' if notes else ""
                lines.append(f"        {_mermaid_type(col)} {name}{' ' + keys if keys else ''}{note}")
            for key, label in marks.items():
                owner, _, name = key.rpartition(".")
                if (owner or "users") == table and name not in present:
                    lines.append(f'        REMOVED {name} "{_quote(label)}"')
            lines.append("    }")
    return Mermaid("\n".join(lines))


# --------------------------------------------------------------------------- revision graph

def _current(cfg: Config) -> set[str]:
    with database.connection(cfg.attributes.get("connection")) as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def history_diagram(cfg: Config) -> Mermaid:
    """Return a Mermaid flowchart of cfg's revision graph, base -> head, the database's revision marked."""
    script = ScriptDirectory.from_config(cfg)
    revisions = sorted(script.walk_revisions(), key=lambda r: (len(list(script.iterate_revisions(
        r.revision, "base"))), r.revision))
    current, heads = _current(cfg), set(script.get_heads())
    node = {r.revision: f"r{i}" for i, r in enumerate(revisions, 1)}
    # Labels are Mermaid "markdown strings" (in backticks): their line breaks survive every renderer.
    here = "" if current else "\n*● database is here*"
    lines = ["flowchart LR", f'    base(["`base: empty database{here}`"])']
    for rev in revisions:
        doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        tags = [t for t, on in (("head", rev.revision in heads),
                                ("● database is here", rev.revision in current)) if on]
        label = "\n".join([f"**{rev.revision}**", _quote(doc).replace("`", "'").replace("*", "")]
                          + ([f"*{' · '.join(tags)}*"] if tags else []))
        lines.append(f'    {node[rev.revision]}["`{label}`"]')
    for rev in revisions:
        down = rev.down_revision  # None, one id, or a tuple of ids (a merge)
        parents = (down,) if isinstance(down, str) else tuple(down or ()) or ("base",)
        for parent in parents:
            lines.append(f"    {node.get(parent, 'base')} --> {node[rev.revision]}")
    lines.append("    classDef current fill:#d4edda,stroke:#155724,stroke-width:3px")
    marked = [node[r] for r in sorted(current) if r in node] or (["base"] if not current else [])
    if marked:
        lines.append(f"    class {','.join(marked)} current")
    return Mermaid("\n".join(lines))


# --------------------------------------------------------------------------- table diffs

class TableDiff:
    """Before and after side by side: a coloured Styler as HTML, marked headers as plain text."""

    def __init__(self, frame: pd.DataFrame, styler):
        self.frame = frame
        self.styler = styler

    def _repr_html_(self) -> str:
        return self.styler.to_html()

    def __repr__(self) -> str:
        # na_rep alone misses all-None columns, which pandas prints as "None"
        return self.frame.astype(object).where(self.frame.notna(), "NULL").to_string(index=False)


def _shorten(value):
    if (isinstance(value, float) and pd.isna(value)) or value is None:
        return value
    text = str(value)
    return text if len(text) <= SHORTEN else text[: SHORTEN - 1] + "…"


def diff_tables(before: pd.DataFrame, after: pd.DataFrame,
                renamed: Mapping[str, str] | None = None, titles: Iterable[str] = ("before", "after")):
    """Return before/after side by side, added (+), renamed and removed (-) columns marked and coloured."""
    renamed = dict(renamed or {})
    kinds_before = {c: "removed" for c in before.columns if c not in after.columns and c not in renamed}
    kinds_after = {c: "added" for c in after.columns
                   if c not in before.columns and c not in renamed.values()}
    kinds_after.update({new: "renamed" for old, new in renamed.items() if new in after.columns})
    headers_before = {c: f"{c} {REMOVED}" for c in kinds_before}
    headers_after = {c: f"{c} {ADDED}" for c, k in kinds_after.items() if k == "added"}
    headers_after.update({new: f"{new} (renamed from {old})" for old, new in renamed.items()
                          if new in after.columns})
    t_before, t_after = tuple(titles)
    parts = {}
    if len(before.columns):
        parts[t_before] = before.rename(columns=headers_before).map(_shorten)
    parts[t_after] = after.rename(columns=headers_after).map(_shorten)
    frame = pd.concat(parts, axis=1)
    kind_of = {(t_before, headers_before.get(c, c)): k for c, k in kinds_before.items()}
    kind_of.update({(t_after, headers_after.get(c, c)): k for c, k in kinds_after.items()})

    def colour_cells(col: pd.Series) -> list[str]:
        return [COLOURS.get(kind_of.get(col.name), "")] * len(col)

    def colour_headers(index: pd.Index) -> list[str]:
        return [COLOURS.get(kind_of.get((top, name)), "") for top, name in
                zip(frame.columns.get_level_values(0), index, strict=True)]

    uuid = "diff_" + hashlib.sha1(frame.to_csv().encode()).hexdigest()[:10]
    caption = ("green (+) added · amber renamed · red (-) removed" if kind_of
               else "the same columns before and after")
    split = len(before.columns) if t_before in parts else 0  # first column of the "after" side
    styles = [{"selector": "th.col_heading.level0",
               "props": "text-align: center; border-bottom: 1px solid #999"},
              {"selector": "td, th.col_heading.level1", "props": "text-align: left"}]
    if split:
        styles.append({"selector": f"td.col{split}, th.col{split}", "props": "border-left: 2px solid #999"})
    styler = (frame.style.set_uuid(uuid).hide(axis="index").format(na_rep="NULL")
              .apply(colour_cells, axis=0).apply_index(colour_headers, axis="columns", level=1)
              .set_caption(caption).set_table_styles(styles))
    return TableDiff(frame, styler)
