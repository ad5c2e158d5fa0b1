# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type modules turn into ``fail_json``."""

from __future__ import annotations

from typing import Any


class NatsOpsError(Exception):
    """A failure with a message fit for an operator, and optional facts to return with it."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
