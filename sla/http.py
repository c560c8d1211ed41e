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

import hashlib
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase

_MAX_AGE = re.compile(r"max-age=(\d+)")
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_HEADERS = "If-None-Match, Content-Type"
EXPOSED_HEADERS = "ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, Link"


def set_max_age(response: HttpResponseBase, seconds: int) -> None:
    """Ask the middleware to send ``Cache-Control: public, max-age=<seconds>`` for this response."""
    response["Cache-Control"] = f"public, max-age={max(0, int(seconds))}"


def _max_age_of(response: HttpResponseBase) -> int:
    found = _MAX_AGE.search(response.get("Cache-Control", ""))
    return int(found.group(1)) if found else int(settings.NAAP_API_DEFAULT_MAX_AGE_S)


def client_ip(request: HttpRequest) -> str:
    """The caller's IP: the first ``X-Forwarded-For`` hop when we sit behind a trusted proxy."""
    if settings.NAAP_API_TRUST_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return str(request.META.get("REMOTE_ADDR", "") or "unknown")


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
    get_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    if get_client is None:
        cache.add(key, 0, timeout=ttl_s)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=ttl_s)
            return 1
    full_key = cache.make_and_validate_key(key)
    pipe = get_client(full_key, write=True).pipeline(transaction=False)
    pipe.set(full_key, 0, nx=True, ex=ttl_s)
    pipe.incr(full_key)
    _, count = pipe.execute()
    return int(count)


def check_rate(ip: str, now: float | None = None) -> RateDecision:
    """Count one request from ``ip`` in the current fixed window and say whether it may proceed."""
    limit = int(settings.NAAP_API_RATE_LIMIT)
    window = int(settings.NAAP_API_RATE_WINDOW_S)
    moment = time.time() if now is None else now
    index = int(moment // window)
    key = f"{settings.NAAP_API_CACHE_NAMESPACE}:rl:{ip}:{index}"
    count = _count(key, window + 1)  # the key outlives its window by one second
    retry_after = max(1, math.ceil((index + 1) * window - moment))
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        retry_after_s=retry_after,
    )


def etag_for(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates


def _add_cors(response: HttpResponseBase) -> None:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response["Vary"] = "Accept-Encoding"


def _not_modified(etag: str, cache_control: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


def _response_cache_key(request: HttpRequest) -> str:
    digest = hashlib.sha256(request.get_full_path().encode()).hexdigest()
    return f"{settings.NAAP_API_CACHE_NAMESPACE}:resp:{digest}"


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
            refused = HttpResponse(
                b'{"detail": "rate limit exceeded: at most %d requests per %d s per client"}'
                % (decision.limit, settings.NAAP_API_RATE_WINDOW_S),
                status=429,
                content_type="application/json",
            )
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
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
        _add_cors(response)
        return response

    @staticmethod
    def _cacheable(request: HttpRequest) -> bool:
        return request.method in {"GET", "HEAD"} and settings.NAAP_API_RESPONSE_CACHE_S > 0

    def _cached(self, request: HttpRequest) -> HttpResponseBase | None:
        if not self._cacheable(request):
            return None
        hit = cache.get(_response_cache_key(request))
        if hit is None:
            return None
        content, content_type, etag, cache_control = hit
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
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
            cache.set(
                _response_cache_key(request),
                (response.content, response["Content-Type"], etag, cache_control),
                ttl,
            )
            response["X-Cache"] = "miss"
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            return _not_modified(etag, cache_control)
        return response
