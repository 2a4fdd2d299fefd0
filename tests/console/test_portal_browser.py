"""The client portal in a real browser: a client's own nights and report, journal, consent, export and erasure."""

import io
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from nexus.store.access import issue_token
from nexus.store.models import Client, JournalEntry


def test_a_client_sees_their_night_writes_the_journal_changes_consent_exports_and_erases(served, page, artifacts):
    base, service = served
    mine = service.beds()[0]
    service.extract(mine["session"], "night over for the test")  # an ended night: its report is ready
    with service.store.session() as s:
        code = issue_token(s, client_id=mine["client_id"])
        staff = issue_token(s, username="tech")

    # a staff token is not a client's code
    page.goto(base + "/console/portal.html")
    page.fill("input[name=code]", staff)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("clients' portal")

    page.fill("input[name=code]", code)
    page.click("#login-form button[type=submit]")
    rows = page.locator("#nights tbody tr")
    expect(rows).to_have_count(1)  # their own night only, of six beds
    expect(rows.first).to_have_attribute("data-session", mine["session"])
    expect(rows.first).to_have_attribute("data-state", "ended")

    # the night report opens in the page
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    rows.first.locator("button.open-report").click()
    expect(page.locator("#report-view")).to_be_visible(timeout=30_000)  # the report is drawn on request
    assert alerts == []
    frame = page.frame_locator("#report")
    expect(frame.locator("body")).to_contain_text(mine["session"])
    page.screenshot(path=str(artifacts / "portal-report.png"), full_page=True)
    page.click("#report-close")

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
    expect(page.locator("#login-error")).to_contain_text("Your data was erased")  # and the code is revoked
    with service.store.session() as s:
        c = s.get(Client, mine["client_id"])
        assert c.erased_at is not None
        assert s.query(JournalEntry).filter_by(client_id=mine["client_id"]).count() == 0
