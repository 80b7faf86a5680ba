"""Schemathesis over the service's OpenAPI document: whatever it sends, never a 5xx."""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from service_support import PASSWORD, make_config

from rjsync.service import create_app

AUTH = {"Authorization": "Basic " + base64.b64encode(f"portal:{PASSWORD}".encode()).decode()}


def test_service_schema_no_server_errors(tmp_path):
    app = create_app(make_config(tmp_path))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    try:
        for operation in operations:
            fuzz(operation)
    finally:
        app.state.runner.close()


def fuzz(operation) -> None:
    """Up to 30 generated requests to ``operation``, each with and without credentials."""

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_server_error(case):
        for headers in (AUTH, None):  # 401 without credentials is not an error; a 5xx is
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

    no_server_error()
