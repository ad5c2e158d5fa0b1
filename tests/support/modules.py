"""Run a collection module in-process, the way ansible-playbook would, and capture its result."""

from __future__ import annotations

import importlib
import json
from typing import Any
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args


class ModuleFailed(Exception):
    """The module called fail_json; ``result`` holds what it returned."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


class _Exit(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__()
        self.result = result


def run_module(name: str, args: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Run natsops.jetstream.<name> with ``args``; return its result or raise ModuleFailed."""
    module = importlib.import_module(f"ansible_collections.natsops.jetstream.plugins.modules.{name}")
    full_args = dict(args)
    if check_mode:
        full_args["_ansible_check_mode"] = True

    def exit_json(self: Any, **kwargs: Any) -> None:
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(ansible_warnings.get_warning_messages())
        raise _Exit(json.loads(json.dumps(kwargs, default=str)))

    def fail_json(self: Any, msg: str, **kwargs: Any) -> None:
        kwargs["msg"] = msg
        kwargs["failed"] = True
        raise _Exit(json.loads(json.dumps(kwargs, default=str)))

    result: dict[str, Any] = {}
    ansible_warnings._global_warnings.clear()  # module runs share one process here
    with (
        patch_module_args(full_args),
        mock.patch.object(basic.AnsibleModule, "exit_json", exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", fail_json),
    ):
        try:
            module.main()
        except _Exit as done:
            result = done.result
        else:
            raise AssertionError(f"module {name} returned without exit_json or fail_json")
    if result.get("failed"):
        raise ModuleFailed(result)
    return result
