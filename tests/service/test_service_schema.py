"""Schemathesis over the service's OpenAPI document: whatever it sends, never a 5xx."""

from __future__ import annotations

import base64

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from service_support import PASSWORD, make_config

from rjsync.fleet import load_fleet
from rjsync.service import create_app
from rjsync.sync import apply, prepare

RUNBOOK = "rjgit-user_general_set-usage-location"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"portal:{PASSWORD}".encode()).decode()}


def test_service_schema_no_server_errors(tmp_path):
    app = create_app(make_config(tmp_path))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7 + 2 * 6  # the sync API, and the runbook job API in both path families
    try:
        for operation in operations:
            fuzz(operation)
    finally:
        app.state.runner.close()
        app.state.runbook_jobs.close()


def test_runbook_api_fuzzed_parameters_of_a_synced_runbook_never_get_a_5xx(tmp_path, monkeypatch):
    """Bodies made of the runbook's own parameter names (and others), with any JSON values, on a
    synced runbook: every check runs; whatever is sent, a 4xx or a start, never a 5xx."""
    config = make_config(tmp_path)
    alpha = next(e for e in load_fleet(config.manifests).entries if e.name == "alpha")
    with prepare(alpha.settings) as prepared:
        assert apply(prepared).ok
    monkeypatch.setenv("RJSYNC_PWSH", str(tmp_path / "no-pwsh"))  # a start that passes: a 422 sentence
    app = create_app(config)
    client = TestClient(app, headers=AUTH)
    names = st.sampled_from(["UserName", "CountryCode", "Overwrite", "CallerName", "countrycode", "Other"])
    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                          | st.text(max_size=20),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=8)

    @given(body=st.dictionaries(names, values, max_size=5), family=st.sampled_from(["", "/api/external"]))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def never_5xx(body, family):
        for how in ("start", "run"):
            answer = client.post(f"{family}/runbook/{RUNBOOK}/{how}", params={"account": "alpha"}, json=body)
            assert answer.status_code < 500, answer.text
            assert answer.status_code in (403, 404, 409, 422), answer.text
    try:
        never_5xx()
    finally:
        app.state.runner.close()
        app.state.runbook_jobs.close()


def fuzz(operation) -> None:
    """Up to 30 generated requests to ``operation``, each with and without credentials."""

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_server_error(case):
        for headers in (AUTH, None):  # 401 without credentials is not an error; a 5xx is
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

    no_server_error()
