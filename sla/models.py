"""Tables of the sla app: sessions, orchestrator segments, segment-minutes and derivation bookkeeping.

Rows here are derived from telemetry facts by ``sla.sessions.derive`` and are always replaceable: a full
rebuild deletes them and derives them again with identical values.
"""

from __future__ import annotations

from django.db import models


class Session(models.Model):
    """One stream request attempt, key (stream_id, request_id)."""

    stream_id = models.TextField()
    request_id = models.TextField(blank=True, default="")
    gateway = models.TextField(blank=True, default="")
    pipeline = models.TextField(blank=True, default="")
    region = models.TextField(blank=True, default="")
    request_at = models.DateTimeField(null=True)
    first_ingest_at = models.DateTimeField(null=True)
    runner_in_at = models.DateTimeField(null=True)
    runner_out_at = models.DateTimeField(null=True)
    first_frame_at = models.DateTimeField(null=True)
    closed_at = models.DateTimeField(null=True)
    first_output_at = models.DateTimeField(null=True)  # first output of any segment
    last_output_at = models.DateTimeField(null=True)
    ended_at = models.DateTimeField(null=True)  # close time by any cause (trace, error or last event)
    first_event_at = models.DateTimeField(null=True)
    last_event_at = models.DateTimeField(null=True)
    orchestrator = models.TextField(blank=True, default="")
    attribution_final = models.BooleanField(default=False)
    status = models.CharField(max_length=8, default="open")  # open | closed
    close_cause = models.CharField(max_length=8, blank=True, default="")  # trace | error | silence
    outcome = models.CharField(max_length=16, blank=True, default="")
    started = models.BooleanField(default=False)
    error_class = models.CharField(max_length=16, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    p2ff_ms = models.FloatField(null=True)
    startup_ms = models.FloatField(null=True)
    e2e_ms = models.FloatField(null=True)
    swap_count = models.IntegerField(default=0)
    restart_count = models.IntegerField(default=0)
    segment_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "sla_session"
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "request_id"], name="sla_session_key"),
        ]
        indexes = [
            models.Index(fields=["request_at"], name="sla_session_request_at"),
            models.Index(fields=["ended_at"], name="sla_session_ended_at"),
            models.Index(fields=["status", "last_event_at"], name="sla_session_open"),
        ]

    def __str__(self) -> str:
        return f"{self.stream_id}/{self.request_id}"


class Segment(models.Model):
    """The part of one session served by one (on-chain) orchestrator."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="segments")
    ordinal = models.IntegerField()
    orchestrator = models.TextField(blank=True, default="")
    signing_address = models.TextField(blank=True, default="")
    orchestrator_url = models.TextField(blank=True, default="")
    gpu_id = models.TextField(blank=True, default="")
    gpu_type = models.TextField(blank=True, default="")
    region = models.TextField(blank=True, default="")
    pipeline = models.TextField(blank=True, default="")
    gateway = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True)
    ended_at = models.DateTimeField(null=True)
    first_output_at = models.DateTimeField(null=True)
    last_output_at = models.DateTimeField(null=True)
    started = models.BooleanField(default=False)
    ended = models.BooleanField(default=False)  # swapped away, or its session closed
    ended_cleanly = models.BooleanField(default=False)
    swapped_away = models.BooleanField(default=False)
    swap_reason = models.CharField(max_length=24, blank=True, default="")
    error_class = models.CharField(max_length=16, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    fps_samples = models.IntegerField(default=0)
    fps_sum = models.FloatField(default=0.0)
    restart_count = models.IntegerField(default=0)
    request_at = models.DateTimeField(null=True)
    p2ff_ms = models.FloatField(null=True)
    startup_ms = models.FloatField(null=True)
    e2e_ms = models.FloatField(null=True)

    class Meta:
        db_table = "sla_segment"
        constraints = [
            models.UniqueConstraint(fields=["session", "ordinal"], name="sla_segment_key"),
        ]
        indexes = [
            models.Index(fields=["request_at"], name="sla_segment_request_at"),
            models.Index(fields=["ended_at"], name="sla_segment_ended_at"),
            models.Index(fields=["orchestrator", "request_at"], name="sla_segment_orch"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.ordinal} {self.orchestrator}"


class SegmentMinute(models.Model):
    """Performance samples of one segment inside one minute bucket."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="minutes")
    bucket = models.DateTimeField()
    orchestrator = models.TextField(blank=True, default="")
    pipeline = models.TextField(blank=True, default="")
    region = models.TextField(blank=True, default="")
    gpu_id = models.TextField(blank=True, default="")
    gpu_type = models.TextField(blank=True, default="")
    gateway = models.TextField(blank=True, default="")
    samples = models.IntegerField(default=0)
    fps_sum = models.FloatField(default=0.0)
    fps_sumsq = models.FloatField(default=0.0)
    fps_min = models.FloatField(null=True)
    fps_max = models.FloatField(null=True)
    in_fps_sum = models.FloatField(default=0.0)
    in_fps_samples = models.IntegerField(default=0)
    jitter = models.FloatField(null=True)
    output_seconds = models.FloatField(default=0.0)
    restarts = models.IntegerField(default=0)

    class Meta:
        db_table = "sla_segment_minute"
        constraints = [
            models.UniqueConstraint(fields=["segment", "bucket"], name="sla_segment_minute_key"),
        ]
        indexes = [models.Index(fields=["bucket"], name="sla_segment_minute_bucket")]

    def __str__(self) -> str:
        return f"{self.segment_id}@{self.bucket.isoformat()}"


class DeriveCursor(models.Model):
    """How far a derivation got: facts received up to ``position`` are reflected in its output."""

    name = models.CharField(max_length=40, unique=True)
    position = models.DateTimeField(null=True)  # greatest fact received_at processed
    newest_event_at = models.DateTimeField(null=True)  # newest event time seen (silence clock)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "sla_derive_cursor"

    def __str__(self) -> str:
        return self.name


class DirtyRange(models.Model):
    """A [start, end) time range whose derived rows changed; consumed and deleted by rollup refresh."""

    kind = models.CharField(max_length=20)
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "sla_dirty_range"
        indexes = [models.Index(fields=["kind", "start"], name="sla_dirty_range_kind")]

    def __str__(self) -> str:
        return f"{self.kind} [{self.start.isoformat()}, {self.end.isoformat()})"


from sla.scoring_models import Score, ScoringConfig  # noqa: E402,F401
