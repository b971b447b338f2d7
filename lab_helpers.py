"""Helpers for the Database Evolution notebooks, and the lab's command line.

In a notebook: ``import lab_helpers`` and call ``lab_helpers.name(...)``. Importing it
does nothing and loads nothing but the standard library; each name loads its own part of
``labkit`` on first use, and the database starts on first use.

On the command line, from the repository root, ``python -m lab_helpers --help`` lists the
subcommands (``url``, ``status``, ``goto N``, ``reset``, ``stop``, ``doctor``,
``student-copies``, ``refresh-notebooks``, ``classroom ...``); see ``labkit/cli.py``.
"""

from __future__ import annotations

import importlib
import sys

# Each public name, and where it lives: (module, attribute).
_EXPORTS = {
    # Every notebook (labkit/notebook/workspace.py): start a phase, autogenerate, show tables and scripts.
    "Phase": ("labkit.notebook.workspace", "Phase"),
    "start": ("labkit.notebook.workspace", "start"),
    "users": ("labkit.notebook.workspace", "users"),
    "show_script": ("labkit.notebook.workspace", "show_script"),
    "script_text": ("labkit.notebook.workspace", "script_text"),
    "app_connection": ("labkit.notebook.workspace", "app_connection"),
    # What the learner sees (labkit/notebook/display.py): Mermaid diagrams, highlighted before/after tables.
    "schema_diagram": ("labkit.notebook.display", "schema_diagram"),
    "history_diagram": ("labkit.notebook.display", "history_diagram"),
    "diff_tables": ("labkit.notebook.display", "diff_tables"),
    "relative_paths": ("labkit.notebook.display", "relative_paths"),
    "relative": ("labkit.notebook.display", "relative"),
    # Small readers and writers (labkit/notebook/queries.py).
    "query": ("labkit.notebook.queries", "frame"),
    "checksum": ("labkit.notebook.queries", "checksum"),
    "scratch_copy": ("labkit.notebook.queries", "scratch_copy"),
    "run_sql": ("labkit.notebook.queries", "run_sql"),
    "short_error": ("labkit.diagnose", "short_error"),
    # Notebook 3: rehearse and roll back, offline SQL, squawk, a rollout beside live apps, flat against linear.
    "rehearsal": ("labkit.notebook.rehearsal", "rehearsal"),
    "offline_sql": ("labkit.notebook.rehearsal", "offline_sql"),
    "squawk": ("labkit.notebook.rehearsal", "squawk"),
    "squawk_rules": ("labkit.notebook.rehearsal", "squawk_rules"),
    "Rollout": ("labkit.notebook.zero_downtime", "Rollout"),
    "LOCKS_SQL": ("labkit.notebook.zero_downtime", "LOCKS_SQL"),
    "flat_vs_linear": ("labkit.notebook.zero_downtime", "flat_vs_linear"),
    "flat_vs_linear_verdict": ("labkit.notebook.zero_downtime", "flat_vs_linear_verdict"),
    # Notebook 5: what the lab hands to your own project: a database URL and project-template/.
    "project_database_url": ("labkit.notebook.project", "project_database_url"),
    "project_template": ("labkit.notebook.project", "project_template"),
    # Notebook 7: a migration measured next to a reader and a writer (labkit/notebook/bigtables.py),
    # and what was measured as tables, verdicts and a plot (labkit/notebook/bigreport.py).
    "big_rows": ("labkit.notebook.bigtables", "big_rows"),
    "measure": ("labkit.notebook.bigtables", "measure"),
    "cancel_when": ("labkit.notebook.bigtables", "cancel_when"),
    "OBSERVER_SQL": ("labkit.notebook.bigtables", "OBSERVER_SQL"),
    "waits_table": ("labkit.notebook.bigreport", "table"),
    "locks_table": ("labkit.notebook.bigreport", "locks"),
    "catalogue": ("labkit.notebook.bigreport", "catalogue"),
    "wait_verdict": ("labkit.notebook.bigreport", "verdict"),
    "plot_waits": ("labkit.notebook.bigreport", "plot_waits"),
    "show_sql": ("labkit.notebook.bigreport", "show_sql"),
    "project_folder": ("labkit.notebook.bigreport", "project_folder"),
    "forget_bytecode": ("labkit.notebook.bigreport", "forget_bytecode"),
    # Notebook 9: whole databases for a project, so a schema-diff tool can compare them.
    "project_database": ("labkit.notebook.history", "project_database"),
    "drop_project_database": ("labkit.notebook.history", "drop_project_database"),
    "pg_dump": ("labkit.notebook.history", "pg_dump"),
    # Notebooks 3 and 7: old and new application code running beside a migration, every write counted.
    "app_version": ("labkit.notebook.liveapp", "version"),
    "live_app": ("labkit.notebook.liveapp", "running"),
    # Notebook 8: a project URL with pgvector in reach, and an application next to an embedding swap.
    "project_url": ("labkit.notebook.evolving", "project_url"),
    "require_vector": ("labkit.notebook.evolving", "require_vector"),
    "App": ("labkit.notebook.evolving", "App"),
    "APP_READ": ("labkit.notebook.evolving", "READ"),
    "APP_WRITE": ("labkit.notebook.evolving", "WRITE"),
    # The database, its phases and its sample data.
    "url": ("labkit.database", "resolve_url"),
    "engine": ("labkit.database", "checked_engine"),
    "status": ("labkit.status", "status"),
    "alembic_config": ("labkit.phases", "config"),
    "goto": ("labkit.phases", "goto"),
    "reset": ("labkit.phases", "reset"),
    "REVISIONS": ("labkit.phases", "REVISIONS"),
    "SAMPLE_USERS": ("labkit.phases", "SAMPLE_USERS"),
    "SAMPLE_SETTINGS": ("labkit.phases", "SAMPLE_SETTINGS"),
    "EMBEDDING_DIM": ("labkit.models", "EMBEDDING_DIM"),
    "NAMING_CONVENTION": ("labkit.models", "NAMING_CONVENTION"),
    "embed": ("labkit.embedding", "embed"),
    "LabError": ("labkit.errors", "LabError"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Load a public name from its part of ``labkit`` on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'lab_helpers' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if __name__ == "__main__":
    from labkit.cli import main

    sys.exit(main())
