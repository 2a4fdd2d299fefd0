"""The client portal in a real browser: a client's own nights and report, journal, consent, export and erasure."""

import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from nexus.guard.policy import AccessDenied
from nexus.store.client_login import client_login, invite_client
from nexus.store.models import Client, JournalEntry

MINE = "a lighthouse in the pines"
PASSWORD = "correct horse battery staple"  # the staff user of the served fixture


def _invited(service):
    """The first bed's record, its client's code and a fresh one-time invitation code."""
    mine = service.beds()[0]
    with service.store.session() as s:
        client_code = s.get(Client, mine["client_id"]).code
        invitation, _ = invite_client(s, mine["client_id"])
    return mine, client_code, invitation


def _fill_enrol(page, base, client_code, invitation, again):
    """Open the portal's enrol form and fill it (password MINE, typed again as ``again``); the form."""
    page.goto(base + "/console/portal.html")
    page.click("#enrol summary")
    enrol = page.locator("#enrol-form")
    enrol.locator("input[name=code]").fill(client_code)
    enrol.locator("input[name=invitation]").fill(invitation)
    enrol.locator("input[name=password]").fill(MINE)
    enrol.locator("input[name=again]").fill(again)
    return enrol


def test_a_client_sees_their_night_writes_the_journal_changes_consent_exports_and_erases(served, page, artifacts):
    base, service = served
    mine, client_code, invitation = _invited(service)  # a night still running: its report is the night so far

    # first visit: the client sets a password with the facility's one-time invitation code
    enrol = _fill_enrol(page, base, client_code, invitation, MINE + "!")
    enrol.locator("button[type=submit]").click()
    expect(page.locator("#enrol-error")).to_contain_text("The two passwords differ")
    enrol.locator("input[name=again]").fill(MINE)
    page.screenshot(path=str(artifacts / "portal-enrol.png"), full_page=True)
    enrol.locator("button[type=submit]").click()
    expect(page.locator("#portal")).to_be_visible()
    with service.store.session() as s:
        assert s.get(Client, mine["client_id"]).password_hash.startswith("$argon2id$")
    page.click("#logout")
    expect(page.locator("#me")).to_have_text("")  # nobody's code left on the screen

    # later visits: code and password; a wrong password and a staff member's login are refused
    login = page.locator("#login-form")
    for code, password in ((client_code, "not the password I chose"), ("tech", PASSWORD)):
        login.locator("input[name=code]").fill(code)
        login.locator("input[name=password]").fill(password)
        login.locator("button[type=submit]").click()
        expect(page.locator("#login-error")).to_contain_text("Wrong client code or password")
    expect(page.locator("#portal")).to_be_hidden()
    page.screenshot(path=str(artifacts / "portal-login.png"), full_page=True)
    login.locator("input[name=code]").fill(client_code)
    login.locator("input[name=password]").fill(MINE)
    login.locator("button[type=submit]").click()
    rows = page.locator("#nights tbody tr")
    expect(rows).to_have_count(1)  # their own night only, of six beds
    expect(rows.first).to_have_attribute("data-session", mine["session"])
    expect(rows.first).to_have_attribute("data-state", "running")
    expect(page.locator("#dependency")).to_contain_text("1 night so far")  # tonight's, running

    # the night report (so far) opens in the page
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    rows.first.locator("button.open-report").click()
    expect(page.locator("#report-view")).to_be_visible(timeout=30_000)  # the report is drawn on request
    assert alerts == []
    frame = page.frame_locator("#report")
    expect(frame.locator("body")).to_contain_text(mine["session"])
    page.screenshot(path=str(artifacts / "portal-report.png"), full_page=True)
    page.click("#report-close")
    service.extract(mine["session"], "night over for the test")  # an ended night can be erased

    # dream journal
    page.fill("#journal-form textarea", "A lighthouse in a pine forest; the sea was warm.")
    page.fill("#journal-form input[name=mood]", "calm")
    page.click("#journal-form button[type=submit]")
    expect(page.locator("#journal li")).to_have_count(1)
    expect(page.locator("#journal li").first).to_contain_text("lighthouse")
    with service.store.session() as s:
        assert [e.text for e in s.query(JournalEntry).filter_by(client_id=mine["client_id"])] == \
            ["A lighthouse in a pine forest; the sea was warm."]

    # consent: share with a clinician
    share = page.locator("#scopes input[name=clinician_sharing]")
    expect(share).not_to_be_checked()
    share.check()
    page.click("#consent-form button[type=submit]")
    expect(page.locator("#consent-msg")).to_contain_text("Saved")
    expect(page.locator("#scopes input[name=clinician_sharing]")).to_be_checked()
    with service.store.session() as s:
        assert "clinician_sharing" in s.get(Client, mine["client_id"]).consent_scopes
    expect(page.locator("#dependency")).to_contain_text("Tonight:")
    assert "(s)" not in page.locator("#portal").inner_text()  # counts in the right number ("1 night so far")
    page.screenshot(path=str(artifacts / "portal.png"), full_page=True)

    # export: a zip with a manifest and the journal
    with page.expect_download() as dl:
        page.click("#export")
    data = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert any("manifest" in n for n in names)
        assert any("lighthouse" in z.read(n).decode("utf-8", "replace") for n in names if n.endswith(".json"))
    expect(page.locator("#export-msg")).to_contain_text("Downloaded")

    # erasure, with confirmation
    page.click("#erase")
    page.click("#confirm-ok")
    expect(page.locator("#login-error")).to_contain_text("Your data was erased")  # and the login with it
    with service.store.session() as s:
        c = s.get(Client, mine["client_id"])
        assert c.erased_at is not None
        assert s.query(JournalEntry).filter_by(client_id=mine["client_id"]).count() == 0
    with pytest.raises(AccessDenied):
        client_login(service.store, client_code, MINE)


def test_a_reply_that_arrives_after_logout_leaves_nothing_on_the_screen(served, page):
    # the portal loads the client's nights, journal and consent after the login; a logout before the consent's reply
    # arrived used to let that reply write the client's code back on the login screen (seen in a CI run)
    base, service = served
    _, client_code, invitation = _invited(service)
    held = []
    page.route("**/consent", lambda route: held.append(route))  # the consent reply waits until released
    _fill_enrol(page, base, client_code, invitation, MINE).locator("button[type=submit]").click()
    expect(page.locator("#portal")).to_be_visible()
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the portal asked for no consent"
    page.click("#logout")
    held[0].continue_()
    page.wait_for_load_state("networkidle")  # the held reply has come back and been handled
    expect(page.locator("#me")).to_have_text("")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('nexus-client-token')") is None
