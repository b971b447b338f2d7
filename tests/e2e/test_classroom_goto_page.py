"""The progress page's "bring back" button in the real hub, in Chromium: an admin can, a learner cannot.

The same room and hub as test_classroom_progress_page.py (alice and bob at phase 4, carol at
phase 1; nobody's server spawned). The admin opens alice's "bring back…" link, confirms phase 2
on the page that asks, and alice's database is at phase 2 while bob's is exactly as it was;
the move is listed on the room page with the admin's name. While a session of bob's holds a
lock, the page refuses and says so. A learner gets 403 for the page and for the POST.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
from test_classroom_progress_page import ADMIN, SERVICE, log_in, progress_hub

from labkit.phases import REVISIONS

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.root]
__all__ = ["progress_hub"]  # the module's own hub, from the progress page's fixture

STATE = "SELECT (SELECT version_num FROM alembic_version), 'users'::regclass::oid, (SELECT count(*) FROM users)"


def connect(hub, name: str, autocommit: bool = True):
    s = json.loads((Path(hub.env["LAB_CLASSROOM_DIR"]) / "secrets.json").read_text())
    password = quote(s["learners"][name], safe="")
    conn = psycopg2.connect(f"postgresql://{name}:{password}@127.0.0.1:{s['port']}/lab_{name}")
    conn.autocommit = autocommit
    return conn


def state(hub, name: str):
    with contextlib.closing(connect(hub, name)) as conn, conn.cursor() as cur:
        cur.execute(STATE)
        return cur.fetchone()


def test_an_admin_brings_one_learner_back_from_the_page(progress_hub, browser):
    hub = progress_hub
    alice_before, bob_before = state(hub, "alice"), state(hub, "bob")
    assert alice_before[0] == REVISIONS[4]
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(120_000)  # a hub on a loaded 2-core machine answers in seconds
    try:
        log_in(page, hub, ADMIN, [hub.admin, hub.workshop])
        page.wait_for_selector("#room tbody tr")
        page.click('tr[data-learner="alice"] a.goto')
        page.wait_for_selector("#confirm")
        assert f"phase 4 ({REVISIONS[4]})" in page.inner_text("#now")
        assert state(hub, "alice") == alice_before  # opening the page changes nothing: it asks first
        page.select_option("select[name=phase]", "2")
        page.click("#confirm")
        page.wait_for_selector("#result")
        assert "'lab_alice' is at the end of phase 2" in page.inner_text("#result")
        revision, users_oid, rows = state(hub, "alice")
        assert revision == REVISIONS[2]
        assert users_oid != alice_before[1]
        assert rows > 0
        assert state(hub, "bob") == bob_before

        page.click("text=Back to the room")
        page.wait_for_selector("#interventions")
        logged = page.inner_text("#interventions")
        assert f"{ADMIN} brought alice to phase 2" in logged
        assert "phase 2" in page.locator('tr[data-learner="alice"]').inner_text()

        # A session of bob's holds a lock: the page refuses, says why, and bob stays where he is.
        holder = connect(hub, "bob", autocommit=False)
        try:
            holder.cursor().execute("LOCK TABLE users IN ACCESS SHARE MODE")
            page.click('tr[data-learner="bob"] a.goto')
            page.wait_for_selector("#confirm")
            page.select_option("select[name=phase]", "1")
            with page.expect_response(lambda r: r.request.method == "POST") as answer:
                page.click("#confirm")
            assert answer.value.status == 409
            said = page.inner_text("#result")
            assert "bob's kernel holds a lock on their database right now: AccessShare on users" in said
            assert "Nothing was changed." in said
        finally:
            holder.close()
        assert state(hub, "bob") == bob_before
    finally:
        page.close()


def test_a_learner_cannot_bring_anyone_back(progress_hub, browser):
    """Alice gets 403 for the confirmation page and for the POST itself; bob is untouched."""
    hub = progress_hub
    bob_before = state(hub, "bob")
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(120_000)
    try:
        log_in(page, hub, "alice", [hub.workshop])
        response = page.goto(f"{hub.url}{SERVICE}goto?learner=bob")
        assert response.status == 403
        assert page.locator("#confirm").count() == 0
        posted = page.request.post(f"{hub.url}{SERVICE}goto", form={"learner": "bob", "phase": "0"})
        assert posted.status == 403
    finally:
        page.close()
    assert state(hub, "bob") == bob_before
