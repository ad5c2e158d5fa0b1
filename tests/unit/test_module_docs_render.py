"""Every module's documentation renders with ansible-doc, doc fragments included.

A ': ' in a plain YAML line of DOCUMENTATION, or of a doc fragment every module extends, breaks
ansible-doc for the module (ansible-test sanity finds it too, but only at the end of a CI run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")
# Modules that never connect to NATS (no connection options, not in the nats action group).
WITHOUT_NATS = {"backup_repository"}


@pytest.fixture(scope="module")
def rendered() -> dict:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections")}
    names = [f"natsops.jetstream.{name}" for name in MODULES]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", *names],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", MODULES)
def test_the_documentation_renders(name, rendered):
    doc = rendered[f"natsops.jetstream.{name}"]["doc"]
    assert doc["short_description"] and doc["options"]
    assert ("servers" in doc["options"]) != (name in WITHOUT_NATS)  # the connection fragment was merged in
