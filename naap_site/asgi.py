"""ASGI entry point: HTTP through Django, websockets through Channels (routes in naap_site/routing.py)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from naap_site.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_asgi, "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns))}
)
