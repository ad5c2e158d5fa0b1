# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The collection's identity, recorded in every backup manifest (kept equal to galaxy.yml by a test)."""

from __future__ import annotations

COLLECTION_NAME = "natsops.jetstream"
COLLECTION_VERSION = "0.1.0"
