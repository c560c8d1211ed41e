"""Framing policy: only embed routes may be framed, and only by the origins of NAAP_EMBED_FRAME_ANCESTORS."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

EMBED_PREFIX = "/embed/"


def embed_frame_ancestors() -> str:
    origins = [o for o in getattr(settings, "NAAP_EMBED_FRAME_ANCESTORS", []) if o]
    return " ".join(origins) if origins else "'none'"


class FramePolicyMiddleware:
    """Embeds: ``Content-Security-Policy: frame-ancestors <setting>``; everything else: DENY and 'none'.

    Sits above Django's XFrameOptionsMiddleware, which it tells to leave embeds alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
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
