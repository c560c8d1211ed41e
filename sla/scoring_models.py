"""Versioned scoring configuration and stored scores."""

from __future__ import annotations

from typing import Any

from django.db import models

from sla.scoring import ScoringParams, Targets


class ScoringConfig(models.Model):
    """One version of the scoring rules. Versions are never edited once scores were computed with them."""

    version = models.IntegerField(unique=True)
    active = models.BooleanField(default=False)
    weights = models.JSONField()  # {"latency": 0.3, "reliability": 0.4, "performance": 0.3}
    thresholds = models.JSONField()  # {"latency_zero_multiple": 3, "jitter_free": 0.1, "jitter_span": 0.4}
    default_targets = models.JSONField()  # {"fps": 20, "p2ff_ms": 3000}
    workflow_targets = models.JSONField(default=dict)  # {"<pipeline>": {"fps": .., "p2ff_ms": ..}}
    min_sessions = models.IntegerField(default=5)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "sla_scoring_config"

    def __str__(self) -> str:
        return f"scoring v{self.version}"

    def params(self) -> ScoringParams:
        def targets(raw: dict[str, Any]) -> Targets:
            return Targets(fps=float(raw["fps"]), p2ff_ms=float(raw["p2ff_ms"]))

        return ScoringParams(
            version=self.version,
            weight_latency=float(self.weights["latency"]),
            weight_reliability=float(self.weights["reliability"]),
            weight_performance=float(self.weights["performance"]),
            latency_zero_multiple=float(self.thresholds["latency_zero_multiple"]),
            jitter_free=float(self.thresholds["jitter_free"]),
            jitter_span=float(self.thresholds["jitter_span"]),
            min_sessions=self.min_sessions,
            default_targets=targets(self.default_targets),
            workflow_targets={k: targets(v) for k, v in self.workflow_targets.items()},
        )


class Score(models.Model):
    """Score of one orchestrator × workflow over one window [window_end − length, window_end)."""

    orchestrator = models.TextField()
    workflow = models.TextField()
    window = models.CharField(max_length=4)  # "1h" | "24h"
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    version = models.IntegerField()
    score = models.FloatField(null=True)
    latency = models.FloatField(null=True)
    reliability = models.FloatField(null=True)
    performance = models.FloatField(null=True)
    sufficient = models.BooleanField(default=False)
    sessions = models.IntegerField(default=0)
    inputs = models.JSONField()
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "sla_score"
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "workflow", "window", "window_end", "version"], name="sla_score_key"
            ),
        ]
        indexes = [
            models.Index(fields=["window", "window_end", "workflow"], name="sla_score_window"),
            models.Index(fields=["orchestrator", "window", "window_end"], name="sla_score_orch"),
        ]

    def __str__(self) -> str:
        return f"{self.orchestrator} {self.workflow} {self.window}@{self.window_end.isoformat()}"
