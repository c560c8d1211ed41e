"""POST /v1/ingest — batches as a JSON array or NDJSON (optionally gzip), authenticated per publisher."""

from __future__ import annotations

import gzip
import zlib

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.services import authenticate_publisher

router = Router(tags=["ingest"])


class IngestCounts(Schema):
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]


class ErrorOut(Schema):
    detail: str


def _api_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-Api-Key", "").strip()


@router.post(
    "/ingest",
    response={200: IngestCounts, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
    summary="Submit telemetry events",
    description="Body: one event, a JSON array of events, or JSON lines. `Content-Encoding: gzip` accepted. "
    "Authenticate with `Authorization: Bearer <publisher API key>`.",
)
def ingest(request: HttpRequest) -> tuple[int, dict[str, object]]:
    publisher = authenticate_publisher(_api_key(request))
    if publisher is None:
        raise HttpError(401, "unknown or missing publisher API key")
    limit = settings.NAAP_MAX_BODY_BYTES
    length = request.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise HttpError(413, f"body is larger than {limit} bytes")
    body = request.body
    if len(body) > limit:
        raise HttpError(413, f"body is larger than {limit} bytes")
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = decompressor.decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise HttpError(400, f"body is not valid gzip: {exc}") from exc
        if len(body) > limit or decompressor.unconsumed_tail:
            raise HttpError(413, f"decompressed body is larger than {limit} bytes")
    if not body.strip():
        raise HttpError(400, "body is empty: send a JSON event, a JSON array of events, or JSON lines")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"body is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    result = ingest_messages([Message(body=body, publisher=publisher)], source="http")
    return 200, result.as_dict()
