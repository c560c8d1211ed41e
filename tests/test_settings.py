"""Settings come from the environment and fail loudly: checked by importing them in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOW_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def _settings_in_a_fresh_process(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NAAP_", "DJANGO_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "naap_site.settings", **env})
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _settings_in_a_fresh_process(SHOW_KEY, NAAP_DEBUG="false")

    assert result.returncode != 0
    assert "naap_site.env.ConfigError: NAAP_SECRET_KEY must be set when NAAP_DEBUG is false" in result.stderr
    assert result.stdout == ""


def test_the_secret_key_is_read_from_the_environment():
    result = _settings_in_a_fresh_process(SHOW_KEY, NAAP_SECRET_KEY="s3cret-from-env")
    assert (result.returncode, result.stdout.strip()) == (0, "s3cret-from-env")


def test_debug_mode_starts_with_a_development_key():
    result = _settings_in_a_fresh_process(SHOW_KEY, NAAP_DEBUG="true")
    assert (result.returncode, result.stdout.strip()) == (0, "dev-only-insecure-naap_secret_key")


def test_the_publisher_reconcile_interval_is_read_from_settings_when_celery_is_configured():
    code = (
        "from naap_site.celery import app; print(app.conf.beat_schedule['reconcile-publishers']['schedule'])"
    )
    result = _settings_in_a_fresh_process(code, NAAP_SECRET_KEY="x", NAAP_ACCESS_RECONCILE_S="17")
    assert (result.returncode, result.stdout.strip()) == (0, "17.0"), result.stderr

    refused = _settings_in_a_fresh_process(code, NAAP_SECRET_KEY="x", NAAP_ACCESS_RECONCILE_S="1")
    assert "NAAP_ACCESS_RECONCILE_S must be at least 5" in refused.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "NAAP_SIWE_CHAIN_IDS",
            "1,arbitrum",
            "NAAP_SIWE_CHAIN_IDS must be a comma-separated list of integers",
        ),
        (
            "NAAP_SLA_DERIVE_SETTLE_S",
            "-1",
            "NAAP_SLA_DERIVE_SETTLE_S must be a finite number of at least 0.0",
        ),
        ("NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE", "maybe", "NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE must be a boolean"),
    ],
)
def test_bad_values_of_the_newer_settings_name_the_variable(name, value, message):
    result = _settings_in_a_fresh_process(SHOW_KEY, NAAP_SECRET_KEY="x", **{name: value})
    assert result.returncode != 0
    assert message in result.stderr
