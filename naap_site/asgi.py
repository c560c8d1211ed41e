"""ASGI entry point: HTTP through Django, websockets through Channels (routes in naap_site/routing.py).

Public reads (``/v1/sla/``) pass a fast path first (``sla.http.PublicReadFastPath``): cache hits and 429s are
answered from one Redis round trip without entering Django; misses continue into Django, whose middleware
chain is fully async-capable so concurrent requests are not funnelled through one thread.

Production runs ``uvicorn naap_site.asgi:application --workers N`` with N = the cores available to the web
tier (2 on the 2-core reference machine; the API benchmark runs it that way).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from naap_site.routing import websocket_urlpatterns  # noqa: E402
from sla.http import PublicReadFastPath  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": PublicReadFastPath(django_asgi),
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
