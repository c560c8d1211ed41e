"""One websocket endpoint, ``/ws/live``: clients subscribe to named streams and receive numeric deltas.

Stream names:
- ``leaderboard:<workflow>:<region>:<window>`` (``all`` for any workflow or region),
- ``orchestrator:<0x address>``,
- ``network``.

Client → server: ``{"subscribe": [names]}``, ``{"unsubscribe": [names]}``, ``{"ping": n}``.
Server → client: ``{"type": "subscribed", "streams": [...]}``, ``{"type": "pong", "ping": n}``,
``{"type": "delta", "stream": name, "seq": n, "sent_at": ms, "data": {...}}``, ``{"type": "error", ...}``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

MAX_STREAMS_PER_CONNECTION = 20
LEADERBOARD_WINDOWS = ("1h", "24h")
_PART = re.compile(r"^[A-Za-z0-9._/-]{1,80}$")
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


class StreamNameError(ValueError):
    """A stream name that the live endpoint does not know."""


def parse_stream(name: str) -> tuple[str, tuple[str, ...]]:
    """Split and validate a stream name; returns (kind, parts)."""
    if not isinstance(name, str) or len(name) > 200:
        raise StreamNameError("stream name must be a string of at most 200 characters")
    parts = name.split(":")
    kind = parts[0]
    if kind == "network" and len(parts) == 1:
        return kind, ()
    if kind == "orchestrator" and len(parts) == 2 and _ADDRESS.match(parts[1]):
        return kind, (parts[1],)
    if kind == "leaderboard" and len(parts) == 4:
        workflow, region, window = parts[1:]
        if _PART.match(workflow) and _PART.match(region) and window in LEADERBOARD_WINDOWS:
            return kind, (workflow, region, window)
    raise StreamNameError(f"unknown stream {name!r}")


def leaderboard_stream(workflow: str, region: str, window: str) -> str:
    return f"leaderboard:{workflow or 'all'}:{region or 'all'}:{window}"


def orchestrator_stream(address: str) -> str:
    return f"orchestrator:{address.lower()}"


NETWORK_STREAM = "network"


def group_for(stream: str) -> str:
    """Channels group names are limited to ASCII letters, digits, '-', '_' and '.'; hash the stream name."""
    return "live." + hashlib.sha256(stream.encode()).hexdigest()[:40]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.streams: set[str] = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for stream in list(getattr(self, "streams", ())):
            await self.channel_layer.group_discard(group_for(stream), self.channel_name)
        self.streams = set()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "messages must be JSON objects"})
            return
        if "ping" in content:
            await self._register(sorted(self.streams))
            await self.send_json({"type": "pong", "ping": content["ping"]})
            return
        if "unsubscribe" in content:
            for name in _names(content["unsubscribe"]):
                if name in self.streams:
                    self.streams.discard(name)
                    await self.channel_layer.group_discard(group_for(name), self.channel_name)
            await self.send_json({"type": "subscribed", "streams": sorted(self.streams)})
            return
        if "subscribe" in content:
            accepted: list[str] = []
            for name in _names(content["subscribe"]):
                try:
                    parse_stream(name)
                except StreamNameError as exc:
                    await self.send_json({"type": "error", "error": str(exc), "stream": str(name)[:200]})
                    continue
                if name not in self.streams and len(self.streams) >= MAX_STREAMS_PER_CONNECTION:
                    await self.send_json({"type": "error", "error": "too many streams", "stream": name})
                    continue
                self.streams.add(name)
                accepted.append(name)
                await self.channel_layer.group_add(group_for(name), self.channel_name)
            await self._register(accepted)
            await self.send_json({"type": "subscribed", "streams": sorted(self.streams)})
            return
        await self.send_json({"type": "error", "error": "expected subscribe, unsubscribe or ping"})

    async def live_delta(self, event: dict[str, Any]) -> None:
        """Group message from leaderboard.tasks: forward it unchanged (it is already small and numeric)."""
        if event.get("stream") in self.streams:
            await self.send_json(
                {
                    "type": "delta",
                    "stream": event["stream"],
                    "seq": event.get("seq", 0),
                    "sent_at": event.get("sent_at"),
                    "data": event["data"],
                }
            )

    async def _register(self, streams: list[str]) -> None:
        if streams:
            from leaderboard.tasks import register_streams

            await sync_to_async(register_streams)(streams)


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)][:MAX_STREAMS_PER_CONNECTION]
    return []
