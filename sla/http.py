"""HTTP behaviour of the public read API (``/v1/sla/...``): rate limiting, CORS, cache headers and ETags.

One middleware, :class:`PublicReadMiddleware`, wraps every request whose path starts with
``NAAP_API_PUBLIC_PREFIX``:

1. **Rate limit** per client IP in a fixed window of ``NAAP_API_RATE_WINDOW_S`` seconds, counted in the
   Django cache (Redis), so all web processes share one budget. Over ``NAAP_API_RATE_LIMIT`` requests the
   answer is ``429`` with ``Retry-After`` (seconds until the window ends).
2. **CORS**: public reads carry ``Access-Control-Allow-Origin: *``; an ``OPTIONS`` preflight is answered
   here with ``204``.
3. **Shared response cache**: a successful ``GET`` is kept in the Django cache for as long as its
   ``Cache-Control: max-age`` says (at most ``NAAP_API_RESPONSE_CACHE_S``), keyed by path and query, so
   that identical reads from many clients cost one query (the same role a CDN plays in front of us).
4. **Validators**: every ``200`` gets a strong ``ETag`` (a hash of the body) and ``Cache-Control:
   public, max-age=N``; a request whose ``If-None-Match`` matches gets ``304`` with no body.

Views choose their freshness with :func:`set_max_age` (a ``Cache-Control`` header this middleware reads;
ninja copies headers set on a handler's temporal ``response`` onto the final one).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, ParamSpec, TypeVar

import redis
import redis.asyncio
from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase

_MAX_AGE = re.compile(r"max-age=(\d+)")
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_HEADERS = "If-None-Match, Content-Type"
EXPOSED_HEADERS = "ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, Link"
# Scope key under which the ASGI fast path (sla.fastpath) hands its rate decision to the middleware.
FAST_PATH_DECISION = "naap.public_read.decision"


P = ParamSpec("P")
R = TypeVar("R")
_db_threads: ThreadPoolExecutor | None = None


def _pool_size() -> int:
    """``max_size`` of the default database's psycopg pool, or 0 when the pool is off."""
    options = settings.DATABASES["default"].get("OPTIONS") or {}
    pool = options.get("pool") if isinstance(options, dict) else None
    if not pool:
        return 0
    return int(pool.get("max_size", 4)) if isinstance(pool, dict) else 4


def _db_executor(size: int) -> ThreadPoolExecutor:
    global _db_threads  # noqa: PLW0603  (one executor per process, created on first use)
    if _db_threads is None:
        _db_threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="naap-api-db")
    return _db_threads


def _then_release(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return func(*args, **kwargs)
    finally:
        connection.close()  # with the pool on, this hands the connection back to it


async def run_db(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a handler's database work (and its shaping) without blocking the event loop or other requests.

    With the psycopg pool on (production), ``func`` runs on one of as many worker threads as the pool holds
    connections, in parallel with other requests, and its connection goes back to the pool afterwards. Under
    ASGI Django would otherwise run it on the one thread it keeps for sync code (``thread_sensitive``), so 50
    clients would be served one at a time. Without a pool (the test settings, where each test's transaction
    lives on one connection of the calling thread) it runs on that thread, as a sync view would.
    """
    size = _pool_size()
    if size == 0:
        return await sync_to_async(partial(func, *args, **kwargs), thread_sensitive=True)()
    call = partial(_then_release, func, *args, **kwargs)
    return await sync_to_async(call, thread_sensitive=False, executor=_db_executor(size))()


def set_max_age(response: HttpResponseBase, seconds: int) -> None:
    """Ask the middleware to send ``Cache-Control: public, max-age=<seconds>`` for this response."""
    response["Cache-Control"] = f"public, max-age={max(0, int(seconds))}"


def _max_age_of(response: HttpResponseBase) -> int:
    found = _MAX_AGE.search(response.get("Cache-Control", ""))
    return int(found.group(1)) if found else int(settings.NAAP_API_DEFAULT_MAX_AGE_S)


def ip_of(remote_addr: str, forwarded_for: str) -> str:
    """The caller's IP: the first ``X-Forwarded-For`` hop when we sit behind a trusted proxy."""
    if settings.NAAP_API_TRUST_FORWARDED_FOR:
        first = forwarded_for.split(",")[0].strip()
        if first:
            return first
    return remote_addr or "unknown"


def client_ip(request: HttpRequest) -> str:
    return ip_of(str(request.META.get("REMOTE_ADDR", "")), str(request.META.get("HTTP_X_FORWARDED_FOR", "")))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


def _count(key: str, ttl_s: int) -> int:
    """Atomically add one to a counter that expires ``ttl_s`` after it was created.

    On Redis this is one pipelined round trip (SET NX EX, INCR) on the cache's own client instead of the
    three that ``cache.add`` + ``cache.incr`` cost; other cache backends (the demo's local memory) use those.
    """
    full_key = cache.make_and_validate_key(key)
    client = raw_redis(full_key)
    if client is None:
        cache.add(key, 0, timeout=ttl_s)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=ttl_s)
            return 1
    pipe = client.pipeline(transaction=False)
    pipe.set(full_key, 0, nx=True, ex=ttl_s)
    pipe.incr(full_key)
    _, count = pipe.execute()
    return int(count)


def check_rate(ip: str, now: float | None = None) -> RateDecision:
    """Count one request from ``ip`` in the current fixed window and say whether it may proceed."""
    window = int(settings.NAAP_API_RATE_WINDOW_S)
    moment = time.time() if now is None else now
    index = int(moment // window)
    count = _count(rate_key(ip, index), window + 1)  # the key outlives its window by one second
    return decide(count, moment)


def rate_window(moment: float) -> tuple[int, int]:
    """Index of the fixed window holding ``moment``, and the TTL its counter gets."""
    window = int(settings.NAAP_API_RATE_WINDOW_S)
    return int(moment // window), window + 1


def decide(count: int, moment: float) -> RateDecision:
    """The decision for the ``count``-th request of its window."""
    limit = int(settings.NAAP_API_RATE_LIMIT)
    window = int(settings.NAAP_API_RATE_WINDOW_S)
    index = int(moment // window)
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        retry_after_s=max(1, math.ceil((index + 1) * window - moment)),
    )


def refusal_body(decision: RateDecision) -> bytes:
    return b'{"detail": "rate limit exceeded: at most %d requests per %d s per client"}' % (
        decision.limit,
        settings.NAAP_API_RATE_WINDOW_S,
    )


def etag_for(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates


def public_headers(decision: RateDecision | None) -> list[tuple[str, str]]:
    """Headers every public read answer carries: the rate budget (when counted) and CORS."""
    rate = (
        [("X-RateLimit-Limit", str(decision.limit)), ("X-RateLimit-Remaining", str(decision.remaining))]
        if decision is not None
        else []
    )
    return [
        *rate,
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", EXPOSED_HEADERS),
        ("Vary", "Accept-Encoding"),
    ]


def _add_cors(response: HttpResponseBase) -> None:
    for name, value in public_headers(None):
        response[name] = value


def _not_modified(etag: str, cache_control: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


def response_cache_key(path: str, query: str) -> str:
    """Cache key of a response: the path and the raw query string, as the ASGI scope and Django both see them."""
    digest = hashlib.sha256(f"{path}?{query}".encode()).hexdigest()
    return f"{settings.NAAP_API_CACHE_NAMESPACE}:resp:{digest}"


def _response_cache_key(request: HttpRequest) -> str:
    return response_cache_key(request.path, str(request.META.get("QUERY_STRING", "")))


def rate_key(ip: str, index: int) -> str:
    return f"{settings.NAAP_API_CACHE_NAMESPACE}:rl:{ip}:{index}"


def raw_redis(key: str) -> Any | None:
    """The cache's own redis-py client for ``key`` when the cache is Redis, else None (local memory)."""
    get_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    return None if get_client is None else get_client(key, write=True)


# A cached response is stored as bytes of our own layout, so that the ASGI fast path can read it with an
# asyncio Redis client without Django's serializer: a JSON header line [content type, ETag, Cache-Control],
# a newline, then the body.
def pack_entry(content: bytes, content_type: str, etag: str, cache_control: str) -> bytes:
    return json.dumps([content_type, etag, cache_control]).encode() + b"\n" + content


def unpack_entry(blob: bytes) -> tuple[bytes, str, str, str]:
    head, _, content = blob.partition(b"\n")
    content_type, etag, cache_control = json.loads(head)
    return content, str(content_type), str(etag), str(cache_control)


def _cache_get(key: str) -> bytes | None:
    client = raw_redis(cache.make_and_validate_key(key))
    if client is None:
        found = cache.get(key)
        return found if isinstance(found, bytes) else None
    value = client.get(cache.make_and_validate_key(key))
    return bytes(value) if value is not None else None


def _cache_put(key: str, blob: bytes, ttl_s: int) -> None:
    full_key = cache.make_and_validate_key(key)
    client = raw_redis(full_key)
    if client is None:
        cache.set(key, blob, ttl_s)
    else:
        client.set(full_key, blob, ex=ttl_s)


class PublicReadMiddleware:
    """Rate limiting, CORS, shared response cache and ETag/304 for the public read API.

    Async-only on purpose: Django runs a dual-mode middleware in sync mode when the layers below it are sync
    (they are), which would put every request, cache hits included, on the single thread where Django
    serialises sync views under ASGI. As an async middleware its checks and cache reads run on worker
    threads of their own (``thread_sensitive=False``), so a refused or cached read never queues behind a
    view. Under WSGI (the test client) Django adapts it with ``async_to_sync``.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(settings.NAAP_API_PUBLIC_PREFIX):
            return await self.get_response(request)
        scope = getattr(request, "scope", None)
        counted = scope.get(FAST_PATH_DECISION) if isinstance(scope, dict) else None
        if isinstance(counted, RateDecision):  # the ASGI fast path counted it and found no cached copy
            decision: RateDecision | None = counted
        else:
            early, decision = await sync_to_async(self._before, thread_sensitive=False)(request)
            if early is not None:
                return early
        response = await self.get_response(request)
        return await sync_to_async(self._after, thread_sensitive=False)(request, response, decision)

    def _before(self, request: HttpRequest) -> tuple[HttpResponseBase | None, RateDecision | None]:
        """An answer that needs no view (preflight, 429, cache hit), and the rate decision."""
        if request.method == "OPTIONS":
            preflight = HttpResponse(status=204)
            _add_cors(preflight)
            preflight["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            preflight["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            preflight["Access-Control-Max-Age"] = "86400"
            return preflight, None

        decision = check_rate(client_ip(request))
        if not decision.allowed:
            refused = HttpResponse(refusal_body(decision), status=429, content_type="application/json")
            refused["Retry-After"] = str(decision.retry_after_s)
            refused["X-RateLimit-Limit"] = str(decision.limit)
            refused["X-RateLimit-Remaining"] = "0"
            _add_cors(refused)
            return refused, decision

        hit = self._cached(request)
        if hit is not None:
            return self._decorate(hit, decision), decision
        return None, decision

    def _after(
        self, request: HttpRequest, response: HttpResponseBase, decision: RateDecision | None
    ) -> HttpResponseBase:
        return self._decorate(self._store(request, response), decision)

    @staticmethod
    def _decorate(response: HttpResponseBase, decision: RateDecision | None) -> HttpResponseBase:
        for name, value in public_headers(decision):
            response[name] = value
        return response

    @staticmethod
    def _cacheable(request: HttpRequest) -> bool:
        return request.method in {"GET", "HEAD"} and settings.NAAP_API_RESPONSE_CACHE_S > 0

    def _cached(self, request: HttpRequest) -> HttpResponseBase | None:
        if not self._cacheable(request):
            return None
        blob = _cache_get(_response_cache_key(request))
        if blob is None:
            return None
        content, content_type, etag, cache_control = unpack_entry(blob)
        if etag_matches(request.headers.get("If-None-Match", ""), etag):
            return _not_modified(etag, cache_control)
        served = HttpResponse(content, content_type=content_type)
        served["ETag"] = etag
        served["Cache-Control"] = cache_control
        served["X-Cache"] = "hit"
        return served

    def _store(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code != 200 or request.method not in {"GET", "HEAD"}:
            if response.status_code >= 400:
                response["Cache-Control"] = "no-store"
            return response
        if not isinstance(response, HttpResponse):  # streaming responses keep their own headers
            return response
        max_age = _max_age_of(response)
        cache_control = f"public, max-age={max_age}"
        etag = etag_for(response.content)
        response["ETag"] = etag
        response["Cache-Control"] = cache_control
        ttl = min(max_age, int(settings.NAAP_API_RESPONSE_CACHE_S))
        if self._cacheable(request) and ttl > 0:
            entry = pack_entry(response.content, response["Content-Type"], etag, cache_control)
            _cache_put(_response_cache_key(request), entry, ttl)
            response["X-Cache"] = "miss"
        if etag_matches(request.headers.get("If-None-Match", ""), etag):
            return _not_modified(etag, cache_control)
        return response


# --- the ASGI fast path ------------------------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
ASGIApp = Callable[..., Awaitable[None]]


def _redis_location() -> str | None:
    """The one Redis URL behind the Django cache, or None when the cache is something else."""
    config = settings.CACHES.get("default", {})
    location = config.get("LOCATION")
    if config.get("BACKEND") != "django.core.cache.backends.redis.RedisCache" or not isinstance(
        location, str
    ):
        return None
    return None if "," in location or ";" in location else location


class PublicReadFastPath:
    """ASGI wrapper that answers cache hits and 429s of public ``GET`` reads before Django is entered.

    One pipelined Redis round trip on the event loop (count the request in its rate window, fetch the cached
    response) decides most requests: refused → 429, cached → 200 or 304, with the same headers and body
    :class:`PublicReadMiddleware` would send. A miss goes on to Django carrying the rate decision in its scope
    (so the request is counted once), where the view runs and the middleware stores the answer. Anything
    else — other paths, other methods, a cache that is not one Redis, a Redis error — is left to Django.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any | None:
        location = _redis_location()
        if location is None:
            return None
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:  # asyncio clients belong to one loop (tests run several, uvicorn one per worker)
            client = redis.asyncio.Redis.from_url(location)
            self._clients[loop] = client
        return client

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "GET"
            or not str(scope.get("path", "")).startswith(settings.NAAP_API_PUBLIC_PREFIX)
            or settings.NAAP_API_RESPONSE_CACHE_S <= 0
        ):
            await self.app(scope, receive, send)
            return
        client = self._client()
        if client is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        remote = scope.get("client") or ("", 0)
        ip = ip_of(str(remote[0]), headers.get("x-forwarded-for", ""))
        moment = time.time()
        index, ttl = rate_window(moment)
        counter = cache.make_and_validate_key(rate_key(ip, index))
        query = scope.get("query_string", b"").decode()
        stored = cache.make_and_validate_key(response_cache_key(scope["path"], query))
        try:
            pipe = client.pipeline(transaction=False)
            pipe.set(counter, 0, nx=True, ex=ttl)
            pipe.incr(counter)
            pipe.get(stored)
            _, count, blob = await pipe.execute()
        except redis.RedisError:
            await self.app(scope, receive, send)
            return
        decision = decide(int(count), moment)
        if not decision.allowed:
            refused = [
                ("Content-Type", "application/json"),
                ("Retry-After", str(decision.retry_after_s)),
                ("X-RateLimit-Limit", str(decision.limit)),
                ("X-RateLimit-Remaining", "0"),
                *public_headers(None),
            ]
            await _answer(send, 429, refused, refusal_body(decision))
            return
        if blob is None:
            await self.app({**scope, FAST_PATH_DECISION: decision}, receive, send)
            return
        content, content_type, etag, cache_control = unpack_entry(bytes(blob))
        validators = [("ETag", etag), ("Cache-Control", cache_control)]
        if etag_matches(headers.get("if-none-match", ""), etag):
            await _answer(send, 304, [*validators, *public_headers(decision)], b"")
            return
        found = [("Content-Type", content_type), *validators, ("X-Cache", "hit"), *public_headers(decision)]
        await _answer(send, 200, found, content)


async def _answer(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if status != 304:
        raw.append((b"Content-Length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def drop_cached_responses(**_: object) -> int:
    """Forget every cached public response; connected to ``sla.signals.refresh_completed``, so that clients
    never wait out a max-age for numbers that a refresh has just changed. Returns how many were dropped."""
    pattern = cache.make_and_validate_key(f"{settings.NAAP_API_CACHE_NAMESPACE}:resp:*")
    client = raw_redis(pattern)
    if client is None:
        cache.clear()  # local-memory cache (single-process demo): nothing else lives there worth keeping
        return 0
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)
