"""GET /api/sessions/{id}/report: the night report of a session (so far, while it runs), to its client and staff."""

from nexus.store.access import issue_token


def test_the_report_of_a_running_then_ended_night_for_its_client_and_staff_not_for_another_client(facility):
    beds = facility.service.beds()
    mine = beds[0]  # the 'client' token of the fixture is this bed's client
    r = facility.get(f"/api/sessions/{mine['session']}/report", role="client")  # the night so far
    assert r.status_code == 200 and "this report shows the night so far" in r.text
    # the service's live hypnogram (3 epochs 95 s in), not yet stored: statistics and its figure
    assert "Sleep statistics (AASM)" in r.text and '<img alt="hypnogram"' in r.text and "(of 3)" in r.text
    assert "The recording is stored when the night ends" in r.text
    facility.service.extract(mine["session"], "test")
    r = facility.get(f"/api/sessions/{mine['session']}/report", role="client")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert mine["session"] in r.text and ("<svg" in r.text or "<img" in r.text)
    assert facility.get(f"/api/sessions/{mine['session']}/report", role="technician").status_code == 200
    with facility.store.session() as s:
        other = issue_token(s, client_id=beds[1]["client_id"])
    r = facility.client.get(f"/api/sessions/{mine['session']}/report", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 403
    assert facility.get("/api/sessions/nope/report", role="client").status_code == 404
