"""Schemathesis over the client API's OpenAPI document (/schema): generated requests to every documented operation,
with a valid token holding every scope, never get a 5xx, and every refusal is `{"error": ...}`. Bounded (EXAMPLES
per operation, derandomized) so it stays part of the suite; a failure names the request that caused it."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.python import asgi

from app.web.app import create_app
from tests.apitools import ALL, bearer, issue_token

EXAMPLES = 8  # per operation: ~50 operations in well under a minute


def test_no_operation_answers_5xx(ctx):
    token = issue_token(ctx, "fuzzer", f"{ALL} profile")
    issue_token(ctx, "someone")
    app = create_app(ctx)
    try:
        # Schemathesis runs the app's start-up itself (its own lifespan, kept until shut down below).
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 40
        for operation in operations:
            fuzz(operation, bearer(token))
    finally:
        asgi.shutdown_lifespans()


def fuzz(operation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        response = case.call(headers=headers)
        request = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:500]
        assert response.status_code < 500, f"{request}: {response.status_code} {response.text[:500]}"
        if response.status_code >= 400:
            assert "error" in response.json(), f"{request}: {response.text[:500]}"

    check()
