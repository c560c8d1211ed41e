"""Writes of the telemetry app that are not the hot ingest path."""

from __future__ import annotations

from django.core.cache import cache

from telemetry.models import Publisher, hash_api_key


def authenticate_publisher(api_key: str) -> str | None:
    """The publisher name for an API key, or None. Cached briefly; revocation takes effect within 30 s."""
    if not api_key:
        return None
    digest = hash_api_key(api_key)
    cache_key = f"publisher:{digest}"
    name = cache.get(cache_key)
    if name is None:
        publisher = Publisher.objects.filter(api_key_hash=digest, active=True).only("name").first()
        name = publisher.name if publisher else ""
        cache.set(cache_key, name, 30)
    return name or None
