"""Signals the sla app sends; later stages (pages, live updates) connect to them, sla never imports them."""

from __future__ import annotations

import django.dispatch

# Sent after a run of derive → rollups → scores has committed. kwargs: ranges (list of (start, end)
# datetimes that changed) and scores (how many scores were written).
refresh_completed = django.dispatch.Signal()
