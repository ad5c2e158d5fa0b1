# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings of the procedure playbooks: each from its natsops_ variable, else its old name (deprecated), else
the shared default (playbooks/vars/natsops_defaults.yml)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

DOCUMENTATION = r"""
name: natsops_settings
short_description: The settings of the procedure playbooks, old variable names included (deprecated)
version_added: 0.1.0
description:
  - Every setting of the C(natsops.jetstream) playbooks is read from its variable C(natsops_<setting>); when that is
    not set, from the setting's name before the C(natsops_) prefix (such as C(backup_root)), with a deprecation
    warning that names the new variable; else from the shared defaults in C(playbooks/vars/natsops_defaults.yml).
  - Settings without a default that nobody set are left out of the result (test them with C(is defined), or use
    C(default(omit))).
  - The playbooks load C(natsops_defaults.yml) with C(vars_files) and read their settings from C(_natsops), which
    this filter computes; it is not meant to be set by hand.
positional: _input, defaults, renamed, overrides
options:
  _input:
    description: The variables that are set among C(natsops_<setting>) and the old names, with their values.
    type: dict
    required: true
  defaults:
    description: The default of each setting that has one (setting name without the C(natsops_) prefix).
    type: dict
    required: true
  renamed:
    description: The settings whose old name (the setting name itself, without prefix) is still read.
    type: list
    elements: str
    default: []
  overrides:
    description: Defaults of one play that differ from the shared ones.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The backup root, from natsops_backup_root, else backup_root (deprecated), else the default
  ansible.builtin.debug:
    msg: "{{ (given | natsops.jetstream.natsops_settings(defaults, ['backup_root'])).backup_root }}"
  vars:
    defaults: {backup_root: /srv/backups/nats}
    given: {backup_root: /data/nats-backups}  # from an inventory of before: used, with a deprecation warning
"""

RETURN = r"""
_value:
  description: Each setting's value, by setting name without the C(natsops_) prefix.
  type: dict
"""

display = Display()


def _names(renamed: Any) -> list[str]:
    if isinstance(renamed, (str, bytes)) or not isinstance(renamed, Iterable):
        raise AnsibleFilterError(f"natsops_settings: renamed must be a list of setting names, got {renamed!r}")
    return [str(name) for name in renamed]


def natsops_settings(
    given: Mapping[str, Any],
    defaults: Mapping[str, Any],
    renamed: Any = (),
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if not isinstance(given, Mapping) or not isinstance(defaults, Mapping):
        raise AnsibleFilterError("natsops_settings: expected the variables set and the defaults, as dictionaries")
    old_names = _names(renamed)
    settings = {**defaults, **(overrides or {})}
    given_names = {str(key)[len("natsops_") :] for key in given if str(key).startswith("natsops_")}
    for name in sorted(set(settings) | set(old_names) | given_names):
        new = f"natsops_{name}"
        if name in old_names and name in given:
            if new in given:
                why = f"{new} is set too and wins: remove {name}"
            else:
                why = f"rename it {new}"
                settings[name] = given[name]
            display.deprecated(
                f"The variable {name} of the natsops.jetstream playbooks is deprecated: {why} (every variable of "
                "the playbooks now starts with natsops_)",
                version="0.2.0",  # the release that stops reading the old names
                collection_name="natsops.jetstream",
            )
        if new in given:
            settings[name] = given[new]
    return settings


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"natsops_settings": natsops_settings}
