from __future__ import annotations

import gzip
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings

from telemetry.models import Publisher, RejectedEvent
from telemetry.services import authenticate_publisher
from tests.telemetry.examples import all_examples, examples

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_key() -> str:
    _, key = Publisher.create_with_key("gw-test")
    return key


def post(body: bytes, key: str | None, **headers: str) -> tuple[int, dict[str, object]]:
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    response = Client().post("/v1/ingest", data=body, content_type="application/json", **extra)
    return response.status_code, response.json()


def raw_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_events_raw")
        return int(cursor.fetchone()[0])


def test_a_batch_of_every_example_is_accepted_and_stored(api_key: str) -> None:
    events = all_examples()
    status, counts = post(json.dumps(events).encode(), api_key)
    assert status == 200
    assert counts == {"accepted": len(events), "duplicates": 0, "rejected": 0, "rejected_by_reason": {}}
    assert raw_count() == len(events)


def test_json_lines_with_a_bad_line_store_the_good_ones_and_count_the_bad(api_key: str) -> None:
    lines = [json.dumps(e) for e in examples("ai_stream_status") + examples("stream_trace")] + ["{oops"]
    status, counts = post("\n".join(lines).encode(), api_key)
    assert status == 200
    assert (counts["accepted"], counts["rejected"], counts["rejected_by_reason"]) == (
        3,
        1,
        {"malformed_json": 1},
    )
    assert raw_count() == 3


@pytest.mark.parametrize("key", [None, "", "naap_not-a-real-key"])
def test_an_unknown_or_missing_key_is_refused_with_401_and_the_refusal_is_stored(key: str | None) -> None:
    body = json.dumps(examples("ai_stream_status")).encode()
    status, answer = post(body, key)
    assert status == 401
    assert answer["reason"] == "unknown_publisher"
    assert raw_count() == 0
    (rejected,) = RejectedEvent.objects.all()
    assert (rejected.reason, rejected.source, rejected.raw_size) == ("unknown_publisher", "http", len(body))
    assert bytes(rejected.raw) == body[: len(bytes(rejected.raw))]
    assert key is None or key == "" or key.encode() not in bytes(rejected.raw)


@override_settings(NAAP_REJECTED_KEEP_BYTES=100)
def test_the_stored_bytes_of_a_refused_body_are_bounded() -> None:
    body = json.dumps(all_examples()).encode()
    assert post(body, "wrong")[0] == 401
    (rejected,) = RejectedEvent.objects.all()
    assert (len(bytes(rejected.raw)), rejected.raw_size) == (100, len(body))


def test_a_deactivated_publisher_is_refused(api_key: str) -> None:
    Publisher.objects.update(active=False)
    from django.core.cache import cache

    cache.clear()
    assert post(b"[]", api_key)[0] == 401


@override_settings(NAAP_MAX_BODY_BYTES=2048)
def test_an_oversize_body_is_refused_with_413(api_key: str) -> None:
    body = json.dumps(all_examples()).encode()
    assert len(body) > 2048
    status, answer = post(body, api_key)
    assert (status, answer["reason"]) == (413, "too_large")
    assert raw_count() == 0
    assert RejectedEvent.objects.get().reason == "too_large"


@override_settings(NAAP_MAX_BODY_BYTES=4096)
def test_a_gzip_bomb_is_refused_with_413(api_key: str) -> None:
    body = gzip.compress(b"[" + b" " * 100_000 + b"]")
    assert len(body) < 4096
    status, answer = post(body, api_key, **{"Content-Encoding": "gzip"})
    assert (status, answer["reason"]) == (413, "too_large")


def test_a_gzip_body_is_accepted(api_key: str) -> None:
    events = examples("ai_stream_status") + examples("create_new_payment")
    status, counts = post(gzip.compress(json.dumps(events).encode()), api_key, **{"Content-Encoding": "gzip"})
    assert (status, counts["accepted"]) == (200, 3)


@pytest.mark.parametrize(
    ("body", "headers", "detail_part"),
    [
        (b"not gzip at all", {"Content-Encoding": "gzip"}, "not valid gzip"),
        (gzip.compress(b'[{"a": 1}]')[:-12], {"Content-Encoding": "gzip"}, "truncated"),
        (b"[1]", {"Content-Encoding": "br"}, "not supported"),
        (b"   \n ", {}, "empty"),
        (b'[{"a": "\xff\xfe"}]', {}, "not UTF-8"),
    ],
)
def test_an_unreadable_body_is_refused_with_400_naming_the_reason(
    api_key: str, body: bytes, headers: dict[str, str], detail_part: str
) -> None:
    status, answer = post(body, api_key, **headers)
    assert status == 400
    assert answer["reason"] == "unreadable_body"
    assert detail_part in str(answer["detail"])
    assert RejectedEvent.objects.get().reason == "unreadable_body"


def test_create_publisher_prints_a_key_that_authenticates() -> None:
    out = StringIO()
    call_command("create_publisher", "orch-1", "--kind", "orchestrator", "--eth-address",
                 "0x52CF2968B3DC6016778742D3539449A6597D5954", stdout=out, stderr=StringIO())  # fmt: skip
    key = out.getvalue().strip()
    assert key.startswith("naap_")
    publisher = Publisher.objects.get(name="orch-1")
    assert (publisher.kind, publisher.eth_address) == (
        "orchestrator",
        "0x52cf2968b3dc6016778742d3539449a6597d5954",
    )
    assert key not in publisher.api_key_hash
    assert authenticate_publisher(key) == "orch-1"
    status, counts = post(json.dumps(examples("ai_stream_status")).encode(), key)
    assert (status, counts["accepted"]) == (200, 1)


@pytest.mark.parametrize(
    "args", [["gw-test"], ["new", "--eth-address", "0x12"], ["   "]], ids=["taken", "bad-address", "blank"]
)
def test_create_publisher_refuses_bad_input(api_key: str, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("create_publisher", *args, stdout=StringIO(), stderr=StringIO())
