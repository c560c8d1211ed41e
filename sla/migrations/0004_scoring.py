"""Scoring configs and stored scores; seeds scoring version 1 of METRICS.md."""

from datetime import UTC, datetime

from django.db import migrations, models

SEED_V1 = {
    "version": 1,
    "active": True,
    "weights": {"latency": 0.3, "reliability": 0.4, "performance": 0.3},
    "thresholds": {"latency_zero_multiple": 3.0, "jitter_free": 0.1, "jitter_span": 0.4},
    "default_targets": {"fps": 20.0, "p2ff_ms": 3000.0},
    "workflow_targets": {
        "streamdiffusion": {"fps": 20.0, "p2ff_ms": 3000.0},
        "streamdiffusion-sdxl": {"fps": 15.0, "p2ff_ms": 4000.0},
        "streamdiffusion-sdxl-faceid": {"fps": 15.0, "p2ff_ms": 5000.0},
        "comfyui": {"fps": 15.0, "p2ff_ms": 5000.0},
    },
    "min_sessions": 5,
    "note": "METRICS.md scoring version 1",
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
}


def seed(apps, schema_editor):  # noqa: ANN001, ANN201
    apps.get_model("sla", "ScoringConfig").objects.create(**SEED_V1)


def unseed(apps, schema_editor):  # noqa: ANN001, ANN201
    apps.get_model("sla", "ScoringConfig").objects.filter(version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("sla", "0003_rollups")]

    operations = [
        migrations.CreateModel(
            name="ScoringConfig",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("version", models.IntegerField(unique=True)),
                ("active", models.BooleanField(default=False)),
                ("weights", models.JSONField()),
                ("thresholds", models.JSONField()),
                ("default_targets", models.JSONField()),
                ("workflow_targets", models.JSONField(default=dict)),
                ("min_sessions", models.IntegerField(default=5)),
                ("note", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField()),
            ],
            options={"db_table": "sla_scoring_config"},
        ),
        migrations.CreateModel(
            name="Score",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("orchestrator", models.TextField()),
                ("workflow", models.TextField()),
                ("window", models.CharField(max_length=4)),
                ("window_start", models.DateTimeField()),
                ("window_end", models.DateTimeField()),
                ("version", models.IntegerField()),
                ("score", models.FloatField(null=True)),
                ("latency", models.FloatField(null=True)),
                ("reliability", models.FloatField(null=True)),
                ("performance", models.FloatField(null=True)),
                ("sufficient", models.BooleanField(default=False)),
                ("sessions", models.IntegerField(default=0)),
                ("inputs", models.JSONField()),
                ("computed_at", models.DateTimeField()),
            ],
            options={
                "db_table": "sla_score",
                "indexes": [
                    models.Index(fields=["window", "window_end", "workflow"], name="sla_score_window"),
                    models.Index(fields=["orchestrator", "window", "window_end"], name="sla_score_orch"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("orchestrator", "workflow", "window", "window_end", "version"),
                        name="sla_score_key",
                    )
                ],
            },
        ),
        migrations.RunPython(seed, unseed),
    ]
