"""Pytest set-up shared by every test.

Modules import their utils as ``ansible_collections.natsops.jetstream...``, so the repository is
exposed under that name through a symlink in ``.build/collections`` before anything is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"


def _expose_collection() -> None:
    link = COLLECTIONS_ROOT / "ansible_collections" / "natsops" / "jetstream"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    if str(COLLECTIONS_ROOT) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_ROOT))
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_ROOT))


_expose_collection()

# Fixtures that start real nats-server processes.
pytest_plugins = ["support.server_fixtures", "support.sites"]


@pytest.fixture(autouse=True)
def _modules_run_as_on_a_target() -> Iterator[None]:
    """Modules run in-process (support.modules) as on a managed host, where warnings go into the result.

    Importing any of Ansible's controller code (ansible.errors, as the filter plugins and their tests do) marks the
    whole process as the controller, after which module warnings would be printed instead of returned: each test
    starts on the module side again.
    """
    from ansible.module_utils import _internal

    _internal.is_controller = False
    yield


@pytest.fixture(autouse=True)
def _umask_kept() -> Iterator[None]:
    """A test that runs the backup job's main() in-process sets its umask (0o077) for the process: put it back, or
    the file modes the next tests check depend on which tests ran before them in the same worker."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the warnings and errors of the servers it used: the server's side
    of a failure seen only in CI, where no file is kept."""
    report: Any = yield
    if report.failed:
        from support.servers import NatsCluster, NatsNode

        for value in getattr(item, "funcargs", {}).values():
            nodes = value.nodes if isinstance(value, NatsCluster) else [value] if isinstance(value, NatsNode) else []
            for node in nodes:
                report.sections.append((f"nats-server {node.name} warnings and errors", node.log_problems()))
    return report
