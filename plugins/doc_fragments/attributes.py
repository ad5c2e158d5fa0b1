# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Attributes every module of the collection shares.
    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/natsops.jetstream.nats) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - natsops.jetstream.nats
  platform:
    description: Runs on any host that has nats-py and reaches the NATS servers.
    support: full
    platforms: posix
"""
