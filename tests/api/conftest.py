"""A facility of a few synthetic beds on a manual clock, its app, and a token per role."""

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette asks for httpx2; httpx (a runtime dependency) works the same here
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from nexus.api.app import create_app
from nexus.core.clock import ManualClock
from nexus.facility.service import FacilityService
from nexus.guard.credentials import hash_password
from nexus.store.access import add_user, issue_token

PASSWORD = "correct horse battery staple"
BEDS = 4
REPLAY_EDF = "SC4001E0-PSG_first5min.edf"


@dataclass
class Facility:
    service: FacilityService
    client: TestClient
    tokens: dict[str, str]
    store: object

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "technician", **kw):
        return self.client.get(path, headers=self.auth(role), **kw)

    def post(self, path: str, role: str = "technician", **kw):
        return self.client.post(path, headers=self.auth(role), **kw)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2id hash of PASSWORD, made once per run for the staff of every facility (a hash costs ~0.1-0.3 s of
    CPU by design; three per facility were ~0.5 s of each of ~110 facilities). Each user's row holds it, as
    ``add_user`` would store it; logging in still verifies it with argon2."""
    return hash_password(PASSWORD)


@pytest.fixture
def facility(store, tmp_path, password_hash):
    """Four beds (bed 2 gets a stretch of NaN samples at 40 s), 95 s into the night: three staged epochs."""
    service = FacilityService(store, clients=BEDS, clock=ManualClock(), data_dir=tmp_path, faults=[(1, 40.0)],
                              events=False, run_id="t")
    service.start()
    tokens = {}
    with store.session() as s:
        for role in ("technician", "clinician", "auditor", "admin"):  # the clinician: tokens only
            user = add_user(s, role, role)
            if role != "clinician":
                user.password_hash = password_hash  # PASSWORD, hashed once (above)
            tokens[role] = issue_token(s, username=role)
    first_client = service.beds()[0]["client_id"]
    with store.session() as s:
        tokens["client"] = issue_token(s, client_id=first_client)
    service.advance(95.0, step_s=1.0)  # fast-forwarded (1-s steps, as nexus simulate): 0.5 s, not 2.6 s, a facility
    with TestClient(create_app(service, store)) as client:
        yield Facility(service, client, tokens, store)
    service.stop()


@pytest.fixture
def replay_nights(tmp_path: Path, data_dir: Path) -> Callable[..., Path]:
    """``replay_nights("ward-a", "ward-b")``: a folder ``nights`` in the test's folder with one copy of the real
    5-min Sleep-EDF excerpt per name (``ward-a.edf``, ...), for ``nexus run --source replay:`` beds."""

    def make(*names: str) -> Path:
        nights = tmp_path / "nights"
        nights.mkdir(exist_ok=True)
        for name in names:
            shutil.copy(data_dir / "sleep-edf" / REPLAY_EDF, nights / f"{name}.edf")
        return nights

    return make
