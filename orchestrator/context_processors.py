from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from orchestrator import llm, roles


def loopgate(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"embedded_mode": settings.EMBEDDED}
    return {
        "embedded_mode": settings.EMBEDDED,
        # Live sockets announce what arrived after this moment, even before they connect.
        "rendered_at": f"{time.time():.3f}",
        "user_role": roles.role_label(user),
        "user_is_admin": roles.is_admin(user),
        "user_can_decide": roles.can_decide(user),
        "user_can_operate": roles.can_operate(user),
        "llm_simulated": llm.is_simulated(),
    }
