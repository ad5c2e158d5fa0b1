# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``user:password@`` part of a URL, each half percent-encoded."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

DOCUMENTATION = r"""
name: url_userinfo
short_description: The C(user:password@) part of a URL, percent-encoded
version_added: 0.1.0
description:
  - Percent-encodes a user and a password (every character but letters, digits and C(-._~), so C(/), C(:) and
    C(@) too) and joins them as C(user:password@), ready to put in front of a URL's host.
  - An empty or missing user gives an empty string (no credentials in the URL).
  - Used by the C(nats_server) role for route and gateway URLs.
options:
  _input:
    description: The user.
    type: str
    required: true
  password:
    description: The password.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: A route URL with credentials
  ansible.builtin.debug:
    msg: "nats-route://{{ 'route' | natsops.jetstream.url_userinfo('p@ss/word') }}10.0.0.2:6222"
    # nats-route://route:p%40ss%2Fword@10.0.0.2:6222
"""

RETURN = r"""
_value:
  description: C(user:password@), percent-encoded, or an empty string without a user.
  type: str
"""


def url_userinfo(user: Any, password: Any) -> str:
    if not user:
        return ""
    return f"{quote(str(user), safe='')}:{quote(str(password or ''), safe='')}@"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"url_userinfo": url_userinfo}
