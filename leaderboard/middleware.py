"""Framing policy: only embed routes may be framed, and only by the origins of NAAP_EMBED_FRAME_ANCESTORS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

EMBED_PREFIX = "/embed/"


def embed_frame_ancestors() -> str:
    origins = [o for o in settings.NAAP_EMBED_FRAME_ANCESTORS if o]
    return " ".join(origins) if origins else "'none'"


class FramePolicyMiddleware:
    """Embeds: ``Content-Security-Policy: frame-ancestors <setting>``; everything else: DENY and 'none'.

    Sits above Django's XFrameOptionsMiddleware, which it tells to leave embeds alone. Sync and async
    capable, so that under ASGI it does not push every request onto Django's single sync thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        return self._frame(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return self._frame(request, await get_response(request))

    @staticmethod
    def _frame(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if request.path.startswith(EMBED_PREFIX):
            response.xframe_options_exempt = True
            if "X-Frame-Options" in response:
                del response["X-Frame-Options"]
            policy = f"frame-ancestors {embed_frame_ancestors()}"
        else:
            response["X-Frame-Options"] = "DENY"
            policy = "frame-ancestors 'none'"
        existing = response.get("Content-Security-Policy", "")
        response["Content-Security-Policy"] = f"{existing}; {policy}" if existing else policy
        return response
