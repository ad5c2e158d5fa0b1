# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The accounts option of modules that look into every account (module_utils/core/connection.py ACCOUNTS_OPTION).
    DOCUMENTATION = r"""
options:
  accounts:
    description:
      - Credentials of accounts whose streams to list through their own JetStream API, besides what the
        task's credentials see.
      - With system-account credentials the module sees every stream that has a replica on a server that is
        up, in every account, but not a stream whose every replica is on servers that are down (an R1
        stream on a dead server, for instance). An account's own API lists those too.
      - Each entry takes the same credential options as the task (O(user)/O(password), O(token), O(creds),
        O(nkey), O(context)); O(servers), TLS, timeouts and O(domain) default to the task's.
    type: list
    elements: dict
    default: []
    suboptions:
      servers:
        description: Server URLs for this account, if not the task's O(servers).
        type: list
        elements: str
      context:
        description: A natscli context holding this account's credentials (and URL).
        type: str
      user:
        description: User name.
        type: str
      password:
        description: Password of O(accounts[].user). Never logged.
        type: str
      token:
        description: Authentication token. Never logged.
        type: str
      creds:
        description: Path to a credentials file.
        type: path
      nkey:
        description: Path to a user nkey seed file.
        type: path
"""
