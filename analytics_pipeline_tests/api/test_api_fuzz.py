"""A property-based fuzz of the whole OpenAPI document (schemathesis on Hypothesis): every
operation, with data that fits its parameters' declared schemas (dates over the whole calendar,
year 1 to 9999; every declared choice) and data that does not, sent to the API served by uvicorn
with a valid token of a tenant with data, of one without, and invalid tokens (expired, wrongly
signed, claims the database cannot hold, none). The invariant: no 5xx, and every answer is one
the document declares (status code, content type, body schema)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from analytics_pipeline.api.app import create_app

from .api_data import two_segmented_tenants, two_tenants
from ..api_support import api_env, redis_prefix, redis_server_url, served, token

# Examples per operation and generation mode: enough to reach the edges of each declared schema
# (Hypothesis tries the bounds of a range first), few enough for CI (docs/api.md says how long).
EXAMPLES = 40

AUTHORIZATIONS = [
    f"Bearer {token('acme')}",
    f"Bearer {token('initech')}",  # a tenant without rows
    f"Bearer {token('acme', ttl=dt.timedelta(seconds=-5))}",
    f"Bearer {token('acme', secret='another-secret-' + 'y' * 40)}",
    f"Bearer {token('acme' + chr(0))}",
    f"Bearer {token('x' * 5000)}",
    f"Bearer {token(chr(0xD800))}",
    "Bearer not-a-jwt",
    "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    None,
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def test_no_input_gives_a_5xx_or_an_undeclared_answer(api_env, db_url, two_segmented_tenants):
    with served(create_app(db_url)) as url, requests.Session() as session:
        # The tokens are the test's (AUTHORIZATIONS), sent with every case: without the security
        # scheme, schemathesis neither adds one nor counts a token as the case's invalid part.
        document = session.get(f"{url}/openapi.json").json()
        for operations in document["paths"].values():
            for operation in operations.values():
                operation.pop("security", None)
        schema = schemathesis.openapi.from_dict(document)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 13  # nine /v1 reads, unsubscribe's two, the two probes
        for operation in operations:
            # Data that does not fit: for the operations that take parameters.
            takes = document["paths"][operation.path][operation.method.lower()].get("parameters")
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes else (GenerationMode.POSITIVE,):
                checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

                @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode), authorization=st.sampled_from(AUTHORIZATIONS))
                def fuzz(case, authorization):
                    headers = {"Authorization": authorization} if authorization else {}
                    case.call_and_validate(base_url=url, session=session, headers=headers, checks=checks)

                try:
                    fuzz()
                except Exception as exc:
                    pytest.fail(f"{operation.label} ({mode.value}): {exc}")
