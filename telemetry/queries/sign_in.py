"""Orchestrator identity (sign-in). Read by ``leaderboard.auth``: an address counts as an orchestrator once
network capabilities (or discovery results) have listed it as an on-chain address."""

from __future__ import annotations

from django.db import connection

KNOWN_ORCHESTRATOR_SQL = """
SELECT EXISTS (SELECT 1 FROM telemetry_fact_capability WHERE address = %(address)s)
"""


def is_known_orchestrator_address(address: str) -> bool:
    """Whether ``address`` (lower-case) appears as an on-chain orchestrator address in capabilities."""
    if not address:
        return False
    with connection.cursor() as cursor:
        cursor.execute(KNOWN_ORCHESTRATOR_SQL, {"address": address.lower()})
        row = cursor.fetchone()
    return bool(row and row[0])
