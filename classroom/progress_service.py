"""The room, live: a page at /services/classroom-progress/ that only the hub's admins may open.

JupyterHub starts this as a managed service (``classroom/jupyterhub_config.py``) and routes
``/services/classroom-progress/`` to it. It shows ``python -m lab_helpers classroom progress``
as a table, stuck learners first, that reloads itself every ``CLASSROOM_PROGRESS_REFRESH``
seconds (default 10; a meta refresh, no script), with the same rows as CSV at
``progress.csv``. ``?pace=N`` sets the phase the room should be at (default: its median).
Under it, each learner's exercises (``#exercises``: ✓ solved, ✗ not yet, · not tried, from
their own self-checks, ``labkit.classroom.verdicts``) and, per exercise, how many of the room
have done it. Each row's "bring back" link opens ``goto?learner=NAME``: a page (no reload) that asks which
phase and for confirmation; its POST runs ``classroom goto`` for that learner alone
(``labkit.classroom.progress_goto``), logged with the admin's hub name and the time.

Who may open it is JupyterHub's decision, through OAuth: the page asks the hub for the scope
``access:services!service=classroom-progress``, which the hub's admin role holds and a
learner's role does not, so a learner is refused by the hub with 403 before this code runs.
Everything it shows it reads read-only, as the room's PostgreSQL admin (``labkit.classroom.progress``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado.ioloop import IOLoop
from tornado.web import Application, HTTPError, RequestHandler, authenticated

from labkit import settings
from labkit.classroom import progress, progress_goto, progress_report, verdicts
from labkit.errors import LabError

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; } th, td { padding: .3em .6em; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; } tr.waiting, tr.idle-in-transaction, tr.names-lost, tr.unreadable { background: #fdd; }
tr.behind { background: #ffe9b3; } .small { color: #555; font-size: 12px; }
#exercises td, #exercises th { text-align: center; padding: .2em .35em; } td.solved { background: #dfd; }
td.not-yet { background: #fdd; }
"""
COLUMNS = ["learner", "status", "phase", "users", "names", "last migration (UTC)", "connections", "locks", ""]


def refresh_seconds() -> int:
    """Return how often the page reloads itself (CLASSROOM_PROGRESS_REFRESH, default 10 s)."""
    return settings.progress_refresh()  # checked by the hub's config before it starts this service


class RoomHandler(HubOAuthenticated, RequestHandler):
    """Shared by the page and the CSV: read the room off the event loop."""

    async def room(self) -> list[progress_report.Row]:
        """Return the room's rows; a LabError (the room's server is down) becomes a 503 with its message."""
        pace = self.get_argument("pace", "")
        try:
            seen = await asyncio.get_running_loop().run_in_executor(None, progress.snapshot)
        except LabError as exc:
            raise HTTPError(503, reason=str(exc).splitlines()[0][:200]) from None
        return progress_report.rows(seen, int(pace) if pace.isdigit() else None)


class PageHandler(RoomHandler):
    @authenticated
    async def get(self):
        room = await self.room()
        now = dt.datetime.now(dt.UTC)
        body = "".join(_row(r, now) for r in room) or f'<tr><td colspan="{len(COLUMNS)}">No learners yet.</td></tr>'
        pace = progress_report.pace_of([r.learner for r in room], None)
        query = f"?pace={html.escape(self.get_argument('pace'))}" if self.get_argument("pace", "") else ""
        self.write(f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh_seconds()}"><title>The room</title><style>{STYLE}</style></head>
<body><h1>The room: {len(room)} learners</h1>
<p class="small">Read at {now:%H:%M:%S} UTC, every {refresh_seconds()} s. Stuck learners first; "behind" means
below phase {pace if pace is not None else '-'} (the room's median, or <code>?pace=N</code>).
<a href="progress.csv{query}" download>Download CSV</a></p>
<table id="room"><thead><tr>{"".join(f"<th>{c}</th>" for c in COLUMNS)}</tr></thead>
<tbody>{body}</tbody></table>{_exercises(room)}{_log()}</body></html>""")


MARK_CLASS = {verdicts.SOLVED: "solved", verdicts.NOT_YET: "not-yet", progress_report.NOT_TRIED: "not-tried"}


def _exercises(room: list[progress_report.Row]) -> str:
    """The exercise grid: a learner per row, an exercise per column, and the room's count under each."""
    if not room:
        return ""
    counts = progress_report.room_counts(room)  # label, title, done, tried: the head and the foot
    heads = "".join(f'<th title="{html.escape(title)}">{label}</th>' for label, title, _, _ in counts)
    body = "".join(
        f'<tr data-of="{html.escape(r.learner.name)}"><th>{html.escape(r.learner.name)}</th>'
        + "".join(f'<td class="{MARK_CLASS[m]}" data-exercise="{label}">{m}</td>'
                  for label, m in zip(progress_report.labels(), progress_report.exercise_marks(r.learner), strict=True))
        + "</tr>" for r in room)
    foot = "".join(f'<td data-exercise="{label}" title="{done} of {len(room)} have done {html.escape(title)}'
                   f' ({tried} tried)">{done}/{len(room)}</td>' for label, title, done, tried in counts)
    return (f'<h2>Exercises</h2><p class="small">✓ solved, ✗ not yet, · not tried: what each learner\'s last '
            f'self-check run said. Column 3.2 is notebook 3\'s exercise 2.</p><table id="exercises"><thead><tr>'
            f'<th>learner</th>{heads}</tr></thead><tbody>{body}</tbody><tfoot><tr id="done"><th>done</th>{foot}'
            f'</tr></tfoot></table>')


def _log() -> str:
    lines = progress_goto.recent()
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<h2>Learners brought back</h2><ul id="interventions" class="small">{items}</ul>' if lines else ""


def _row(r: progress_report.Row, now: dt.datetime) -> str:
    s = r.learner
    phase = progress_report.phase_text(s) + (f" + {', '.join(s.projects)}" if s.projects else "")
    cells = [s.name, r.status, phase, "-" if s.users is None else s.users, progress_report.names_text(s),
             progress_report.when_text(s, now), s.connections, s.problem or progress_report.locks_text(s)]
    tds = "".join(f'<td class="num">{html.escape(str(c))}</td>' if isinstance(c, int)
                  else f"<td>{html.escape(str(c))}</td>" for c in cells)
    tds += f'<td><a class="goto" href="goto?learner={html.escape(s.name)}">bring back…</a></td>'
    return f'<tr class="{r.status.replace(" ", "-")}" data-learner="{html.escape(s.name)}">{tds}</tr>'


class CsvHandler(RoomHandler):
    @authenticated
    async def get(self):
        text = progress_report.csv_text(await self.room())
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="classroom-progress.csv"')
        self.write(text)


PHASES = ["0: empty (before notebook 1)", "1: ready for notebook 2", "2: ready for notebook 3",
          "3: ready for notebook 4", "4: end of phase 4"]


class GotoHandler(HubOAuthenticated, RequestHandler):
    """Bring one learner back: GET asks which phase and for confirmation, POST does it."""

    def page(self, body: str) -> None:
        self.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>Bring a learner back</title>
<style>{STYLE}</style></head><body>{body}<p><a href="./">Back to the room</a></p></body></html>""")

    @authenticated
    async def get(self):
        name = self.get_argument("learner")
        if name not in progress.learners():
            raise HTTPError(404, reason="no such learner in this room")
        seen = (await asyncio.get_running_loop().run_in_executor(None, progress.snapshot, [name]))[0]
        now = progress_report.phase_text(seen)
        options = "".join(f'<option value="{n}"{" selected" if n == 2 else ""}>{html.escape(t)}</option>'
                          for n, t in enumerate(PHASES))
        self.page(f"""<h1>Bring {html.escape(name)} back</h1>
<p>{html.escape(name)}'s database is now at: <b id="now">{html.escape(now)}</b>. This runs their own
<code>goto N</code> on their database only: everything they did there since is replaced by the
phase's reference revisions and sample data. Their files are not touched. Their notebook will say that
another session moved its database: they re-run it from the top.</p>
<form method="post" action="goto" id="goto">{self.xsrf_form_html()}
<input type="hidden" name="learner" value="{html.escape(name)}">
<label>Phase <select name="phase">{options}</select></label>
<button type="submit" id="confirm">Yes, bring {html.escape(name)} to this phase</button></form>""")

    @authenticated
    async def post(self):
        name, phase = self.get_argument("learner"), self.get_argument("phase")
        if not phase.isdigit():
            raise HTTPError(400, reason="phase must be 0 to 4")
        who = self.current_user["name"]
        try:
            summary = await asyncio.get_running_loop().run_in_executor(
                None, progress_goto.bring_back, name, int(phase), who)
        except LabError as exc:
            self.set_status(409)
            self.page(f'<h1>Nothing was changed</h1><pre id="result">{html.escape(str(exc))}</pre>')
            return
        self.page(f'<h1>Done</h1><p id="result">{html.escape(summary)}</p>'
                  f'<p class="small">Logged: {html.escape(who)} brought {html.escape(name)} to phase {phase}.</p>')


def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = Application([
        (prefix, PageHandler),
        (url_path_join(prefix, "progress.csv"), CsvHandler),
        (url_path_join(prefix, "goto"), GotoHandler),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    # On Kubernetes the service's URL names the hub's Kubernetes Service (http://hub:8181), an
    # address the pod cannot bind: classroom/k8s/config.yaml sets CLASSROOM_PROGRESS_BIND=0.0.0.0.
    app.listen(url.port, settings.progress_bind() or url.hostname)
    IOLoop.current().start()


if __name__ == "__main__":
    main()
