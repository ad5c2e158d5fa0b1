# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The claims of a NATS JWT, read without checking its signature (nats-server checks it)."""

from __future__ import annotations

import base64
import json
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: jwt_claims
short_description: The claims of a NATS JWT (operator, account or user)
version_added: 0.1.0
description:
  - Decodes the claims part of a NATS JWT as C(nsc) writes it, without checking its signature (the servers do).
  - Used by the C(nats_server) role to check an operator-mode setup before it is deployed.
  - Surrounding whitespace is ignored; anything that is not a JWT fails with a message saying what was found.
options:
  _input:
    description: The JWT text.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The system account named in the operator JWT
  ansible.builtin.debug:
    msg: "{{ (operator_jwt | natsops.jetstream.jwt_claims).nats.system_account }}"
"""

RETURN = r"""
_value:
  description: The claims (C(sub), C(iss), C(iat), C(name), C(nats) with C(type) and the rest).
  type: dict
"""


def jwt_claims(token: Any) -> dict[str, Any]:
    text = str(token or "").strip()
    parts = text.split(".")
    if len(parts) != 3:
        raise AnsibleFilterError(
            f"not a JWT ({len(parts)} dot-separated parts instead of 3): give the JWT text as nsc writes it"
        )
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(body))
    except ValueError as exc:
        raise AnsibleFilterError(f"not a JWT: its claims part does not decode ({exc})") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("nats"), dict):
        raise AnsibleFilterError("not a NATS JWT: its claims have no 'nats' section")
    return claims


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"jwt_claims": jwt_claims}
