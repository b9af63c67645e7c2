from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
django_asgi_app = get_asgi_application()

from orchestrator.server import install as bound_daphne_requests  # noqa: E402

# Under daphne: bodies over the limit and slow senders are refused by the server,
# before anything is buffered for Django (orchestrator/server.py says why there).
bound_daphne_requests()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from orchestrator.origins import SameOriginValidator  # noqa: E402
from orchestrator.routing import websocket_urlpatterns  # noqa: E402
from orchestrator.warmup import warm_up  # noqa: E402

warm_up()  # the first live push must not pay for importing the URLconf and compiling templates

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Sockets only from this server's own pages (Django's CSRF rule for origins): orchestrator/origins.py.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
