# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""nats-py, imported in this one place: the client and the error classes the collection decides on.

Without nats-py the names are stand-ins that nothing raises, so that every module imports and
``connection.require_nats`` can say what is missing (ansible-test imports the modules without it).
"""

from __future__ import annotations

import traceback

try:
    from nats.aio.client import Client as NatsClient
    from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError, SlowConsumerError
    from nats.errors import Error as NatsError
    from nats.errors import TimeoutError as NatsTimeoutError
except ImportError:
    HAS_NATS = False
    NATS_IMPORT_ERROR: str | None = traceback.format_exc()

    class NatsError(Exception):  # type: ignore[no-redef]
        """Stands in for nats.errors.Error."""

    class NatsClient:  # type: ignore[no-redef]
        """Stands in for nats.aio.client.Client."""

    class ConnectionClosedError(NatsError):  # type: ignore[no-redef]
        """Stands in for nats.errors.ConnectionClosedError."""

    class NoRespondersError(NatsError):  # type: ignore[no-redef]
        """Stands in for nats.errors.NoRespondersError."""

    class NoServersError(NatsError):  # type: ignore[no-redef]
        """Stands in for nats.errors.NoServersError."""

    class SlowConsumerError(NatsError):  # type: ignore[no-redef]
        """Stands in for nats.errors.SlowConsumerError."""

    class NatsTimeoutError(NatsError):  # type: ignore[no-redef]
        """Stands in for nats.errors.TimeoutError."""
else:
    HAS_NATS = True
    NATS_IMPORT_ERROR = None

__all__ = [
    "HAS_NATS",
    "NATS_IMPORT_ERROR",
    "ConnectionClosedError",
    "NatsClient",
    "NatsError",
    "NatsTimeoutError",
    "NoRespondersError",
    "NoServersError",
    "SlowConsumerError",
]
