"""POST /v1/ingest — batches as a JSON array or NDJSON (optionally gzip), authenticated per publisher.

Answers are always one of: 200 with the counts (some events may still be rejected, each with a reason),
400 when the body as a whole cannot be read, 401 for an unknown or missing API key, 413 when the body
(or its decompressed form) is larger than ``NAAP_MAX_BODY_BYTES``. Every refusal is stored in the
rejected table with at most ``NAAP_REJECTED_KEEP_BYTES`` of the body; the API key itself never is.
"""

from __future__ import annotations

import zlib

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema

from telemetry.contracts import reasons
from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.services import authenticate_publisher, record_refused_body

router = Router(tags=["ingest"])


class IngestCounts(Schema):
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]


class ErrorOut(Schema):
    detail: str
    reason: str


class _Refused(Exception):
    def __init__(self, status: int, reason: str, detail: str, head: bytes, size: int) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail, self.head, self.size = status, reason, detail, head, size


def _api_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-Api-Key", "").strip()


def _declared_length(request: HttpRequest) -> int | None:
    length = request.headers.get("Content-Length", "").strip()
    return int(length) if length.isdigit() and len(length) < 19 else None


def _gunzip(body: bytes, limit: int, keep: int) -> bytes:
    """Decompress one or more concatenated gzip members, never producing more than ``limit + 1`` bytes."""
    out: list[bytes] = []
    produced = 0
    data = body
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decompressor.decompress(data, limit + 1 - produced)
        except zlib.error as exc:
            raise _Refused(
                400, reasons.UNREADABLE_BODY, f"body is not valid gzip: {exc}", body[:keep], len(body)
            ) from None
        out.append(chunk)
        produced += len(chunk)
        if produced > limit or decompressor.unconsumed_tail:
            raise _Refused(
                413,
                reasons.TOO_LARGE,
                f"decompressed body is larger than {limit} bytes",
                body[:keep],
                len(body),
            )
        if not decompressor.eof:
            raise _Refused(400, reasons.UNREADABLE_BODY, "gzip body is truncated", body[:keep], len(body))
        data = decompressor.unused_data.lstrip(b"\x00")
    return b"".join(out)


def _read_body(request: HttpRequest) -> bytes:
    limit = settings.NAAP_MAX_BODY_BYTES
    keep = settings.NAAP_REJECTED_KEEP_BYTES
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        head = request.read(keep)
        raise _Refused(413, reasons.TOO_LARGE, f"body is larger than {limit} bytes", head, declared)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _Refused(413, reasons.TOO_LARGE, f"body is larger than {limit} bytes", body[:keep], len(body))
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, limit, keep)
    elif encoding not in ("", "identity"):
        detail = f"Content-Encoding {encoding[:40]!r} is not supported: send gzip or nothing"
        raise _Refused(400, reasons.UNREADABLE_BODY, detail, body[:keep], len(body))
    if not body.strip():
        detail = "body is empty: send a JSON event, a JSON array of events, or JSON lines"
        raise _Refused(400, reasons.UNREADABLE_BODY, detail, b"", len(body))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = f"body is not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise _Refused(400, reasons.UNREADABLE_BODY, detail, body[:keep], len(body)) from None
    return body


@router.post(
    "/ingest",
    response={200: IngestCounts, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut},
    summary="Submit telemetry events",
    description="Body: one event, a JSON array of events, or JSON lines. `Content-Encoding: gzip` accepted. "
    "Authenticate with `Authorization: Bearer <publisher API key>` (or `X-Api-Key`). 400 and 413 answers "
    "name a `reason`; events refused one by one are counted in `rejected_by_reason`.",
)
def ingest(request: HttpRequest) -> tuple[int, dict[str, object]]:
    publisher = authenticate_publisher(_api_key(request))
    if publisher is None:
        keep = settings.NAAP_REJECTED_KEEP_BYTES
        head = request.read(keep)
        record_refused_body("http", "", reasons.UNKNOWN_PUBLISHER, "unknown or missing publisher API key",
                            head, _declared_length(request) or len(head))  # fmt: skip
        return 401, {"detail": "unknown or missing publisher API key", "reason": reasons.UNKNOWN_PUBLISHER}
    try:
        body = _read_body(request)
    except _Refused as refused:
        record_refused_body("http", publisher, refused.reason, refused.detail, refused.head, refused.size)
        return refused.status, {"detail": refused.detail, "reason": refused.reason}
    result = ingest_messages([Message(body=body, publisher=publisher)], source="http")
    return 200, result.as_dict()
