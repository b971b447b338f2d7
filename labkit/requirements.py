"""What requirements.txt asks for, and whether an installed version meets it (for the doctor).

With ``packaging`` importable (pip's own parser; any venv that has pip) it decides, so extras
(``psycopg[binary]>=3``), ``~=``, markers and pre-releases follow PEP 440 exactly. In a venv
holding only the standard library (where the doctor must still say what to install) a small
fallback reads the same forms: extras, ``~=``, ``==X.*``, and no pre-release (``2.1.0rc1``)
for ``>=2.1`` unless a bound names one. Markers are not evaluated there: the line counts.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path

LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?")
BOUND = re.compile(r"(===|~=|==|!=|>=|<=|>|<)\s*(\S+)")
VERSION = re.compile(r"v?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?"
                     r"(?:[-_.]?(?:post|rev|r)[-_.]?\d*)?(?:[-_.]?(dev)[-_.]?\d*)?(?:\+[a-z0-9.]*)?", re.I)
COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
           "==": operator.eq, "!=": operator.ne}


class Unreadable(ValueError):
    """A line of requirements.txt that neither parser understands."""


@dataclass
class Requirement:
    """One line of requirements.txt: a package name and its version bounds (``>=2.1,<2.2``)."""

    name: str
    specifier: str

    def allows(self, version: str) -> bool:
        """Return whether ``version`` (as installed) meets every bound; pre-releases only when a bound names one."""
        try:
            from packaging.specifiers import InvalidSpecifier, SpecifierSet
            from packaging.version import InvalidVersion
        except ImportError:
            return _allows(self.specifier, version)
        try:
            return SpecifierSet(self.specifier).contains(version)
        except (InvalidSpecifier, InvalidVersion):
            return _allows(self.specifier, version)


def parse(line: str) -> Requirement | None:
    """Return the requirement on one line (comments and options such as ``-e .`` give None)."""
    line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
    if not line or line.startswith(("#", "-")):
        return None
    try:
        from packaging.requirements import InvalidRequirement
        from packaging.requirements import Requirement as Parsed
    except ImportError:
        return _parse(line)
    try:
        found = Parsed(line)
    except InvalidRequirement as exc:
        raise Unreadable(f"cannot read {line!r}: {str(exc).splitlines()[0]}") from None
    if found.marker is not None and not found.marker.evaluate():
        return None  # not for this Python or platform
    return Requirement(found.name, str(found.specifier))


def read(path: Path) -> list[Requirement]:
    """Return the requirements named in a requirements file, in order."""
    return [req for line in path.read_text().splitlines() if (req := parse(line)) is not None]


# --------------------------------------------------------------------------- the standard-library fallback

def _parse(line: str) -> Requirement:
    match = LINE.fullmatch(line)
    spec = match.group(2).replace(" ", "") if match else ""
    if match is None or any(BOUND.fullmatch(b) is None for b in filter(None, spec.split(","))):
        raise Unreadable(f"cannot read {line!r}")
    return Requirement(match.group(1), spec)


def _version(text: str) -> tuple[tuple[int, ...], bool]:
    """Return a version's release numbers and whether it is a pre-release (``2.1.0rc1`` -> ((2, 1, 0), True))."""
    match = VERSION.fullmatch(text.strip())
    if match is None:
        raise Unreadable(f"cannot read the version {text!r}")
    return tuple(int(p) for p in match.group(1).split(".")), bool(match.group(2) or match.group(4))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def _meets(op: str, want: str, have: tuple[int, ...], pre: bool) -> bool:
    """Return whether one bound holds; a pre-release sorts just below its release (2.1rc1 < 2.1)."""
    if op == "~=":
        release = _version(want)[0]
        return _meets(">=", want, have, pre) and _meets("==", ".".join(map(str, release[:-1])) + ".*", have, pre)
    if want.endswith(".*"):
        prefix = _version(want[:-2])[0]
        same = have[:len(prefix)] + (0,) * max(0, len(prefix) - len(have)) == prefix
        return same if op == "==" else not same
    wanted, wanted_pre = _version(want)
    left, right = _padded(have, wanted)
    key_have, key_want = (left, not pre), (right, not wanted_pre)
    return COMPARE.get(op.replace("===", "=="), operator.eq)(key_have, key_want)


def _allows(specifier: str, version: str) -> bool:
    have, pre = _version(version)
    bounds = [BOUND.fullmatch(b).groups() for b in filter(None, specifier.replace(" ", "").split(","))]
    if pre and not any(_version(want.removesuffix(".*"))[1] for _, want in bounds):
        return False  # PEP 440: a pre-release meets a bound only when some bound names a pre-release
    return all(_meets(op, want, have, pre) for op, want in bounds)
