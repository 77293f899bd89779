"""API fuzzing from the OpenAPI document (schemathesis), in-process on the fixture index: valid and invalid
requests for every operation. No 5xx; every error is JSON {"error": {...}} with a 4xx; every 2xx matches
its schema; invalid data is refused. bench/fuzz.py runs the same against a real gunicorn, at 10,000+."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from recsys.api import create_app
from recsys.build.assemble import BuildResult
from recsys.query.cache import InProcessCache
from recsys.query.engine import Engine
from recsys.settings import Settings

TOKEN = "fuzz-token"
EXAMPLES = 12  # per operation and mode: a few hundred requests in all


def json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is the project's JSON error shape."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and {"code", "message"} <= set(body["error"]), body
    return None


@pytest.fixture(scope="module")
def app(full_build: tuple[Settings, BuildResult], full_engine: Engine) -> Flask:
    settings = full_build[0].replace(admin_token=TOKEN)
    return create_app(settings, engine=full_engine, cache=InProcessCache())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_never_break_the_api(app: Flask, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance, json_errors]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(strategy)
        def call(case: Any) -> None:
            nonlocal sent
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=checks)
            sent += 1

        try:
            call()
        except Unsatisfiable:  # nothing to get wrong in a request without parameters or a body
            assert mode is GenerationMode.NEGATIVE
    assert sent >= 100
