"""Files the tests read, kept in the repository (tests/fixtures) so that a clone alone runs them."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# An account backup written by `nats account backup` from nats-server 2.15.1 (see its README.md).
NATSCLI_FIXTURE = FIXTURES / "natscli-v0.4-server-2.15.1"
