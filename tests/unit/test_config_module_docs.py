"""The stream, consumer and jetstream_config modules document exactly the options they take.

Their setting options are built from tables in module_utils, so this guards the hand-written
DOCUMENTATION against drifting from them (ansible-test's validate-modules checks the same).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml
from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import CONNECTION_ARGUMENT_SPEC

COMPARED = ("type", "elements", "choices", "default", "required", "aliases")


class _Captured(Exception):
    def __init__(self, spec: dict[str, Any], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec
        self.kwargs = kwargs


def argument_spec(name: str) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.natsops.jetstream.plugins.modules.{name}")

    class Capture:
        def __init__(self, argument_spec: dict[str, Any], **kwargs: Any) -> None:
            raise _Captured(argument_spec, kwargs)

    original = module.NatsModule
    module.NatsModule = Capture
    try:
        module.main()
    except _Captured as captured:
        assert captured.kwargs.get("supports_check_mode") is True
        return captured.spec
    finally:
        module.NatsModule = original
    raise AssertionError(f"{name}.main() did not create an AnsibleModule")


def compare(spec: dict[str, Any], documented: dict[str, Any], where: str) -> list[str]:
    problems = []
    for option in sorted(set(spec) | set(documented)):
        if option not in documented:
            problems.append(f"{where}{option}: not documented")
            continue
        if option not in spec:
            problems.append(f"{where}{option}: documented but not an option")
            continue
        given, doc = spec[option], documented[option]
        if not doc.get("description"):
            problems.append(f"{where}{option}: no description")
        for key in COMPARED:
            expected = given.get(key, False if key == "required" else None)
            if key == "type":
                expected = expected or "str"
            actual = doc.get(key, False if key == "required" else None)
            if key in ("choices", "aliases") and expected is not None:
                expected, actual = list(expected), list(actual or [])
            if expected != actual:
                problems.append(f"{where}{option}.{key}: spec {expected!r}, documented {actual!r}")
        if given.get("options") or doc.get("suboptions"):
            problems += compare(given.get("options") or {}, doc.get("suboptions") or {}, f"{where}{option}.")
    return problems


@pytest.mark.parametrize("name", ["stream", "consumer", "jetstream_config"])
def test_documentation_matches_argument_spec(name):
    module = importlib.import_module(f"ansible_collections.natsops.jetstream.plugins.modules.{name}")
    documentation = yaml.safe_load(module.DOCUMENTATION)
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
    spec = {key: value for key, value in argument_spec(name).items() if key not in CONNECTION_ARGUMENT_SPEC}
    assert compare(spec, documentation["options"], "") == []
    assert "natsops.jetstream.connection" in documentation["extends_documentation_fragment"]
