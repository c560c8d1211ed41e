"""Why an event was refused. Stored in ``telemetry_events_rejected.reason`` and counted on /quality."""

MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
TOO_LARGE = "too_large"
UNKNOWN_PUBLISHER = "unknown_publisher"
UNAUTHORIZED_PUBLISHER = "unauthorized_publisher"
BAD_VALUE = "bad_value"
UNREADABLE_BODY = "unreadable_body"  # a whole HTTP body: bad gzip, not UTF-8, empty, unknown encoding

ALL = (
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    WRONG_TYPE,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    TOO_LARGE,
    UNKNOWN_PUBLISHER,
    UNAUTHORIZED_PUBLISHER,
    BAD_VALUE,
    UNREADABLE_BODY,
)
