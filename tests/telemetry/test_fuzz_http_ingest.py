from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.models import Publisher
from tests.telemetry.fuzzing import EXAMPLES, json_values, mutated_examples

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter: list[int] = []


@pytest.fixture
def api_key() -> str:
    _, key = Publisher.create_with_key(f"fuzz-{len(_counter)}")
    return key


def post(body: bytes, headers: dict[str, str]) -> int:
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Length"}
    if "Content-Length" in headers:
        extra["CONTENT_LENGTH"] = headers["Content-Length"]  # a lying or malformed length
    response = Client().post("/v1/ingest", data=body, content_type="application/json", **extra)
    return response.status_code


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(mutated_examples(), max_size=4).map(lambda v: json.dumps(v).encode()),
    st.lists(mutated_examples(), max_size=4).map(lambda v: "\n".join(json.dumps(e) for e in v).encode()),
)


@pytest.mark.slow
@override_settings(NAAP_MAX_BODY_BYTES=8192)
@FUZZ
@given(
    body=bodies,
    gzipped=st.booleans(),
    key_kind=st.sampled_from(["valid", "missing", "wrong", "junk"]),
    junk=header_text,
    encoding=st.sampled_from(["", "gzip", "identity", "br"]) | header_text,
    length=st.none() | st.sampled_from(["0", "-1", "abc"]),  # the test client cannot over-state a length
)
def test_any_request_is_answered_with_200_400_401_or_413_never_500(
    api_key: str, body: bytes, gzipped: bool, key_kind: str, junk: str, encoding: str, length: str | None
) -> None:
    headers: dict[str, str] = {}
    if key_kind == "valid":
        headers["Authorization"] = f"Bearer {api_key}"
    elif key_kind == "wrong":
        headers["Authorization"] = "Bearer naap_wrong"
    elif key_kind == "junk":
        headers["Authorization"] = junk
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif encoding:
        headers["Content-Encoding"] = encoding
    if length is not None:
        headers["Content-Length"] = length
    assert post(body, headers) in (200, 400, 401, 413)


@pytest.mark.slow
@FUZZ
@given(junk=st.lists(mutated_examples() | json_values, min_size=1, max_size=4), good=st.sampled_from(EXAMPLES),
       gzipped=st.booleans(), as_lines=st.booleans())  # fmt: skip
def test_good_events_in_a_mixed_batch_are_always_stored(
    api_key: str, junk: list[Any], good: Any, gzipped: bool, as_lines: bool
) -> None:
    marker = copy.deepcopy(good)
    _counter.append(1)
    marker["event_id" if "event_type" in marker else "id"] = f"good-http-{len(_counter)}"
    batch = [*junk, marker]
    body = ("\n".join(json.dumps(e) for e in batch) if as_lines else json.dumps(batch)).encode()
    headers = {"Authorization": f"Bearer {api_key}"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    assert post(body, headers) == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM telemetry_events_raw WHERE payload = %s::jsonb", [json.dumps(marker)]
        )
        assert cursor.fetchone()[0] == 1
