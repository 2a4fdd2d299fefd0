"""Property tests of the REST API against its own OpenAPI schema (schemathesis): no 5xx, responses as documented.

Every operation of ``/openapi.json`` gets generated requests, valid and invalid, with an admin's token, against
one facility of two beds, on SQLite and (fewer examples) on PostgreSQL; each response must not be a server error,
must have a documented status code and content type, and its body must match the documented schema. A stateful run
then chains calls through the links schemathesis infers from the schema (an id from ``GET /api/sessions`` or
``GET /api/clients`` into the routes that take one), so the routes are also fed ids that exist. Examples per
operation and steps are few (CI time); ``NEXUS_FUZZ_EXAMPLES`` raises the count for a longer run.
"""

import functools
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

EXAMPLES = int(os.environ.get("NEXUS_FUZZ_EXAMPLES", "8"))
PG_EXAMPLES = max(1, EXAMPLES // 4)  # PostgreSQL: the same operations, fewer examples (CI time)
#: Sequences of linked calls per database (SQLite, PostgreSQL), and calls per sequence
SEQUENCES = {"fuzzed": EXAMPLES * 3 // 2, "fuzzed_pg": EXAMPLES * 3 // 4}
STEPS = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


def _facility(url, root):
    """(service, store, admin headers): a facility of two beds 65 s into the night on the database of ``url``."""
    store = open_store(load_settings(database_url=url), create=True, check=False)
    upgrade(store.engine)
    service = FacilityService(store, clients=2, clock=ManualClock(), data_dir=root, events=False, run_id="f")
    service.start()
    with store.session() as s:
        add_user(s, "fuzz-admin", "admin", password="correct horse battery staple")
        token = issue_token(s, username="fuzz-admin")
    service.advance(65.0, step_s=1.0)  # fast-forwarded set-up (1-s steps, as nexus simulate)
    return service, store, {"Authorization": f"Bearer {token}"}


def _serve(facility):
    """Point :data:`APP` at ``facility`` (both databases' facilities live through the module); its headers."""
    service, store, headers = facility
    APP.state.service, APP.state.store = service, store
    return headers


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    service, store, _ = facility = _facility(f"sqlite:///{root / 'nexus.db'}", root)
    yield facility
    service.stop()
    store.close()


@pytest.fixture(scope="module")
def fuzzed_pg(module_postgres_url, tmp_path_factory):
    service, store, _ = facility = _facility(module_postgres_url, tmp_path_factory.mktemp("fuzz-pg"))
    yield facility
    service.stop()
    store.close()


# the schema comes from an app without a facility (creating it starts nothing); the tests give it one
APP = create_app(None, None)  # type: ignore[arg-type]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=QUIET)
def test_every_operation_answers_as_documented(case, fuzzed):
    case.headers = {**(case.headers or {}), **_serve(fuzzed)}
    case.call_and_validate(checks=CHECKS)


@pytest.mark.postgres
@schema.parametrize()
@settings(max_examples=PG_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=QUIET)
def test_every_operation_answers_as_documented_on_postgresql(case, fuzzed_pg):
    case.headers = {**(case.headers or {}), **_serve(fuzzed_pg)}
    case.call_and_validate(checks=CHECKS)


@functools.cache
def _workflow():
    """The state machine of the schema's links (built once: seconds)."""
    return schema.as_state_machine()


@pytest.mark.parametrize("backend", ["fuzzed", pytest.param("fuzzed_pg", marks=pytest.mark.postgres)])
def test_linked_calls_answer_as_documented(backend, request):
    """Sequences of calls along the schema's inferred links (last: they may end beds and erase clients)."""
    headers = _serve(request.getfixturevalue(backend))
    workflow = _workflow()
    links = [name for name, v in vars(workflow).items() if hasattr(v, "hypothesis_stateful_rule")]
    assert len(links) >= 20  # links found: ids flow from lists into the routes that take them

    class Linked(workflow):  # type: ignore[misc, valid-type]
        def before_call(self, case):
            case.headers = {**(case.headers or {}), **headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Linked.run(settings=settings(max_examples=SEQUENCES[backend], stateful_step_count=STEPS, deadline=None,
                                 derandomize=True, suppress_health_check=QUIET))
