"""The one exception the lab raises for a problem a learner can fix."""

from alembic.util import CommandError


class LabError(CommandError):
    """A short, actionable problem: printed as its message, never as a traceback.

    It subclasses Alembic's ``CommandError`` so that the ``alembic`` command line
    prints ``FAILED: <message>`` instead of a traceback, and it tells IPython to
    show the message alone in a notebook.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]
