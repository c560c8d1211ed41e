"""Admin registrations of the telemetry app (autodiscovered by Django)."""

from telemetry.access import admin as access_admin  # noqa: F401  (registers the access-control admins)
