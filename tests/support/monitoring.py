"""Reading a nats-server's monitoring endpoint (varz, routez, ...) while the server may still be starting."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from typing import Any


def monitor_json(url: str, timeout: float = 20, ca: str | None = None) -> dict[str, Any]:
    """The endpoint's JSON, asked again every 0.2 s until it answers or ``timeout`` runs out (then its error)."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
