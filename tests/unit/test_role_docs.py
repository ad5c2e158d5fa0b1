"""Every variable of the nats_server role is validated by argument_specs and documented in its README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "nats_server"


def test_every_default_is_specified_and_documented() -> None:
    defaults = set(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    specified = set(specs["argument_specs"]["main"]["options"])
    readme = (ROLE / "README.md").read_text()
    assert defaults == specified
    assert [name for name in sorted(defaults) if f"| `{name}` |" not in readme] == []


def test_the_readme_table_is_generated_from_the_specs() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROLE.parents[1] / "scripts" / "role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_every_documented_default_is_a_valid_template() -> None:
    """validate_argument_spec templates the specs: a default that is not valid Jinja fails every run of the role."""
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    environment = jinja2.Environment()
    for option in options.values():
        if isinstance(option.get("default"), str):
            environment.parse(option["default"])
