"""``nexus assign`` from another command reaches a running ``nexus run --source`` facility (through the database).

The API's assign route tells the service at once; the command line has only the database, which the
service reads for its unassigned beds' owners, as it reads ``nexus extract``'s orders: the bed shows
its client on the consoles and runs under the client's consent from then on.
"""

from __future__ import annotations

import time

import pytest

from nexus.cli.main import main
from nexus.facility.floor_service import FloorService, wait_for_beds
from nexus.sources.spec import parse_source
from nexus.store.models import Client


@pytest.mark.slow
def test_nexus_assign_on_the_command_line_reaches_the_running_service(store, db_url, tmp_path, replay_nights,
                                                                      monkeypatch, capsys):
    nights = replay_nights("ward-c")
    with store.session() as s:
        s.add(Client(code="C-9", consent_scopes=["recording", "psyche_monitoring"]))
    service = FloorService(store, source=parse_source(f"replay:{nights}:speed=10"), data_dir=tmp_path / "d",
                           events=False, run_id="ac")
    service.start(background=True)
    try:
        assert wait_for_beds(service, 1) == 1
        (bed,) = service.beds()
        name = bed["session"]
        assert bed["unassigned"] and bed["client_code"].startswith("unassigned-")
        monkeypatch.setenv("NEXUS_DATABASE_URL", db_url)
        assert main(["assign", name, "C-9"]) == 0, capsys.readouterr().err
        end = time.monotonic() + 10.0
        while service.bed(name)["unassigned"] and time.monotonic() < end:
            time.sleep(0.05)
        view = service.bed(name)
        assert not view["unassigned"] and view["client_code"] == "C-9" and view["state"] == "running"
        assert "psyche_monitoring" in service.sup.sessions[name].scopes  # the client's consent applies now
    finally:
        service.stop()
