"""A local Streamr node WebSocket plugin: the protocol rules of PEERS.md, served for real on loopback.

- ``/streams/<URI-encoded id>/subscribe?apiKey=K&partitions=0,2`` and
  ``/streams/<URI-encoded id>/publish?apiKey=K&partition=N|partitionKey=K|partitionKeyField=F``;
  a wrong or missing API key is refused with HTTP 401, any other path with 404.
- Content is a JSON object; anything else published is refused by closing the publisher's connection
  with 1011 and "Content is not an object" (the plugin's ``closeWithError``).
- ``payload_metadata=True`` wraps each delivered message as ``{"content", "metadata"}`` with exactly
  ``timestamp, sequenceNumber, publisherId, msgChainId``; False delivers the bare content.
- The sequence number counts messages of one publisher chain that share a timestamp (0 for the first).
- A text ``"ping"`` is answered with ``"pong"``; websocket pings keep connections alive and a connection
  that does not answer them within ``silence_timeout_s`` is closed.

Tests publish through the real publish endpoint or through :meth:`StreamrNode.publish` (what another
publisher's message looks like when it reaches this node), and can make the node drop a message before
delivery (to create a gap), restart, or freeze its event loop (a hung node).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

DEFAULT_PUBLISHER = "0x1111111111111111111111111111111111111111"


@dataclass
class _Chain:
    timestamp: int = -1
    sequence: int = -1

    def next_ref(self, timestamp: int) -> tuple[int, int]:
        timestamp = max(timestamp, self.timestamp)  # a chain never goes back in time
        self.sequence = self.sequence + 1 if timestamp == self.timestamp else 0
        self.timestamp = timestamp
        return timestamp, self.sequence


@dataclass
class StreamrNode:
    api_keys: tuple[str, ...] = ("test-api-key",)
    payload_metadata: bool = True
    partition_counts: dict[str, int] = field(default_factory=dict)  # stream id → partitions (default 1)
    ping_interval_s: float = 5.0
    silence_timeout_s: float = 15.0
    port: int = 0
    subscribe_requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._subscribers: dict[tuple[str, int], set[ServerConnection]] = {}
        self._chains: dict[tuple[str, int, str, str], _Chain] = {}
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> StreamrNode:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="streamr-node", daemon=True)
        self._thread.start()
        self._call(self._start_server())
        return self

    async def _start_server(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self.port,
            process_request=self._check_request,
            ping_interval=self.ping_interval_s,
            ping_timeout=self.silence_timeout_s,
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1] if not self.port else self.port

    def stop(self) -> None:
        """Stop like a killed node: every connection is dropped, the port stops answering."""
        if self._loop is None:
            return
        self._call(self._stop_server())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _stop_server(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        self._subscribers.clear()

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self, seconds: float) -> None:
        """Block the node's event loop: it answers nothing (no pong, no data) for ``seconds``."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(15)

    # -- HTTP upgrade: path and key ---------------------------------------------------------------
    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        segments = parts.path.split("/")
        if len(segments) != 4 or segments[1] != "streams" or segments[3] not in ("subscribe", "publish"):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        query = parse_qs(parts.query)
        if query.get("apiKey", [""])[0] not in self.api_keys:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        parts = urlsplit(ws.request.path)
        _, _, raw_id, action = parts.path.split("/")
        stream_id = unquote(raw_id)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if action == "subscribe":
            await self._subscribe(ws, stream_id, query)
        else:
            await self._publish_connection(ws, stream_id, query)

    async def _subscribe(self, ws: ServerConnection, stream_id: str, query: dict[str, str]) -> None:
        self.subscribe_requests.append(ws.request.path if ws.request else "")
        try:
            partitions = [int(p) for p in query.get("partitions", "0").split(",")]
        except ValueError:
            await ws.close(1011, "Invalid partitions")
            return
        keys = [(stream_id, p) for p in partitions]
        for key in keys:
            self._subscribers.setdefault(key, set()).add(ws)
        try:
            async for frame in ws:
                if frame == "ping":
                    await ws.send("pong")
        except ConnectionClosed:
            pass
        finally:
            for key in keys:
                self._subscribers.get(key, set()).discard(ws)

    async def _publish_connection(self, ws: ServerConnection, stream_id: str, query: dict[str, str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                if frame == "ping":
                    await ws.send("pong")
                    continue
                try:
                    content = json.loads(frame)
                except ValueError:
                    self.refused.append("Payload is not a JSON string")
                    await ws.close(1011, "Payload is not a JSON string")
                    return
                if isinstance(content, dict) and self.payload_metadata and "content" in content:
                    content = content["content"]
                if not isinstance(content, dict):
                    self.refused.append("Content is not an object")
                    await ws.close(1011, "Content is not an object")
                    return
                partition = self._partition_for(stream_id, content, query)
                await self._deliver(stream_id, partition, content, DEFAULT_PUBLISHER, "ws-publish", None)

    def _partition_for(self, stream_id: str, content: dict[str, Any], query: dict[str, str]) -> int:
        count = self.partition_counts.get(stream_id, 1)
        if "partition" in query:
            return int(query["partition"])
        key = query.get("partitionKey")
        if "partitionKeyField" in query:
            key = str(content.get(query["partitionKeyField"], ""))
        if key is None:
            return 0
        return int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big") % count  # noqa: S324

    # -- delivery --------------------------------------------------------------------------------
    async def _deliver(
        self,
        stream_id: str,
        partition: int,
        content: dict[str, Any],
        publisher_id: str,
        msg_chain_id: str,
        timestamp: int | None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        with self._lock:
            chain = self._chains.setdefault((stream_id, partition, publisher_id, msg_chain_id), _Chain())
            ts, seq = chain.next_ref(timestamp if timestamp is not None else int(time.time() * 1000))
        metadata = {
            "timestamp": ts,
            "sequenceNumber": seq,
            "publisherId": publisher_id,
            "msgChainId": msg_chain_id,
        }
        if deliver:
            frame = json.dumps(
                {"content": content, "metadata": metadata} if self.payload_metadata else content
            )
            await self._send_all(stream_id, partition, frame)
        return metadata

    async def _send_all(self, stream_id: str, partition: int, frame: str) -> None:
        for ws in list(self._subscribers.get((stream_id, partition), ())):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)

    def publish(
        self,
        stream_id: str,
        content: dict[str, Any],
        *,
        partition: int = 0,
        publisher_id: str = DEFAULT_PUBLISHER,
        msg_chain_id: str = "chain-1",
        timestamp: int | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """A message from another publisher reaches this node; ``deliver=False`` loses it on the way."""
        if not isinstance(content, dict):
            raise ValueError("Content is not an object")
        return self._call(
            self._deliver(stream_id, partition, content, publisher_id, msg_chain_id, timestamp, deliver)
        )

    def deliver_raw(self, stream_id: str, frame: str, partition: int = 0) -> None:
        """Send a frame as is to the subscribers (what a broken node or a corrupted link would send)."""
        self._call(self._send_all(stream_id, partition, frame))

    def subscriber_count(self, stream_id: str, partition: int = 0) -> int:
        return len(self._subscribers.get((stream_id, partition), ()))
