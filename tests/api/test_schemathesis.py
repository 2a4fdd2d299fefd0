"""Property tests of the REST API against its own OpenAPI schema (schemathesis): no 5xx, responses as documented.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid, with an admin's token, against
one facility of two beds; each response must not be a server error, must have a documented status code and
content type, and its body must match the documented schema. Examples per operation are few (CI time);
``NEXUS_FUZZ_EXAMPLES`` raises the count for a longer run.
"""

import os
import warnings

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from nexus.api.app import create_app
from nexus.core.clock import ManualClock
from nexus.core.settings import load_settings
from nexus.facility.service import FacilityService
from nexus.store import open_store, upgrade
from nexus.store.access import add_user, issue_token

EXAMPLES = int(os.environ.get("NEXUS_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """(app, admin headers): :data:`APP` serving a facility of two beds 65 s into the night, on SQLite."""
    root = tmp_path_factory.mktemp("fuzz")
    store = open_store(load_settings(database_url=f"sqlite:///{root / 'nexus.db'}"), create=True, check=False)
    upgrade(store.engine)
    service = FacilityService(store, clients=2, clock=ManualClock(), data_dir=root, events=False, run_id="f")
    service.start()
    with store.session() as s:
        add_user(s, "fuzz-admin", "admin", password="correct horse battery staple")
        token = issue_token(s, username="fuzz-admin")
    service.advance(65.0)
    APP.state.service, APP.state.store = service, store
    yield APP, {"Authorization": f"Bearer {token}"}
    service.stop()
    store.close()


# the schema comes from an app without a facility (creating it starts nothing); the test gives it one
APP = create_app(None, None)  # type: ignore[arg-type]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_operation_answers_as_documented(case, fuzzed):
    _, headers = fuzzed
    case.headers = {**(case.headers or {}), **headers}
    case.call_and_validate(checks=CHECKS)
