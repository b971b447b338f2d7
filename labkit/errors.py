"""The one exception the lab raises for a problem a learner can fix."""

from __future__ import annotations

try:
    from alembic.util import CommandError
except ImportError:  # a bare venv: the doctor and the settings still report, in plain words
    CommandError = Exception

# The fix of a problem whose cause the lab cannot name: the doctor has its own advice for it.
RUN_DOCTOR = "Run `python -m lab_helpers doctor` for a check-up."


class LabError(CommandError):
    """A short, actionable problem: what happened (``what``) and what to do (``fix``).

    Printed as its message (``what``, then ``fix`` on the next line), never as a traceback.
    Code that reacts to it reads the two fields, never the sentence. It subclasses
    Alembic's ``CommandError`` so that the ``alembic`` command line prints ``FAILED:
    <message>`` instead of a traceback (where Alembic is not installed, only the doctor runs,
    and a plain Exception will do), and it tells IPython to show the message alone.
    """

    def __init__(self, what: str, fix: str = ""):
        self.what, self.fix = what, fix
        super().__init__(f"{what}\n{fix}" if fix else what)

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]
