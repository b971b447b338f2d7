"""Autogenerate hooks: flag likely renames (pgvector's types are rendered by env.py's render_item)."""

from __future__ import annotations

import re
import sys

from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

RENAME_ADVICE = "op.alter_column(table, old_name, new_column_name=new_name)"
# The comment flag_renames writes, as it appears in a generated script.
HINT_BLOCK = re.compile(r"^ *# RENAME\? .*\n(?: *#   .*\n)* *# If it is a rename.*\n", re.MULTILINE)


def strip_rename_hint(script: str) -> str:
    """Return a generated script without the RENAME? comment (once the pair has been edited)."""
    return HINT_BLOCK.sub("", script)


class RenameHint(ops.MigrateOperation):
    """A comment placed at the top of upgrade(): these drops and adds may be renames."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def reverse(self):
        return RenameHint([])


@renderers.dispatch_for(RenameHint)
def _render_hint(autogen_context, op: RenameHint) -> str:
    return "\n".join(f"# {line}" for line in op.lines) if op.lines else "pass"


def _same_type(a, b) -> bool:
    dialect = postgresql.dialect()
    try:
        return a.type.compile(dialect=dialect) == b.type.compile(dialect=dialect)
    except Exception:  # a type this dialect cannot compile is not a rename we can vouch for
        return False


def rename_suspects(upgrade_ops: ops.UpgradeOps) -> list[tuple[str, str, str]]:
    """Return (table, dropped, added) for each drop_column + add_column pair of one type on one table."""
    found = []
    for table_ops in upgrade_ops.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        drops = [o for o in table_ops.ops if isinstance(o, ops.DropColumnOp)]
        adds = [o for o in table_ops.ops if isinstance(o, ops.AddColumnOp)]
        for drop in drops:
            old = drop.to_column()
            for add in adds:
                if _same_type(old, add.column):
                    found.append((table_ops.table_name, drop.column_name, add.column.name))
    return found


def flag_renames(context, revision, directives) -> None:
    """process_revision_directives hook: warn, and write a comment, when a rename looks likely."""
    script = directives[0]
    upgrade_ops = script.upgrade_ops_list[-1] if script.upgrade_ops_list else None
    if upgrade_ops is None:
        return
    suspects = rename_suspects(upgrade_ops)
    if not suspects:
        return
    lines = ["RENAME? Alembic cannot detect renames; it writes a drop and an add, which loses data:"]
    for table, old, new in suspects:
        lines.append(f"  {table}: drop_column({old!r}) + add_column({new!r}) of the same type.")
        print(f"WARNING: {table}.{old} dropped and {table}.{new} added with the same type: "
              f"if this is a rename, use op.alter_column({table!r}, {old!r}, new_column_name={new!r})",
              file=sys.stderr)
    lines.append(f"If it is a rename, replace both with {RENAME_ADVICE}, which keeps the data.")
    upgrade_ops.ops.insert(0, RenameHint(lines))
