"""The stream_consumer_config integration target, through ansible-playbook against a real nats-server."""

from __future__ import annotations

import pytest
import yaml
from support.servers import APP_PASSWORD, APP_USER
from test_targets import REPO_ROOT, run_target

MODULES = ("stream", "consumer", "jetstream_config")


def in_action_group() -> bool:
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    group = (runtime.get("action_groups") or {}).get("nats") or []
    return all(module in group for module in MODULES)


@pytest.mark.skipif(not in_action_group(), reason="the modules are not yet in meta/runtime.yml's action group nats")
def test_stream_consumer_config_target(nats_standalone, tmp_path, unique_name):
    export_root = tmp_path / "exports"
    export_root.mkdir()
    result = run_target(
        "stream_consumer_config",
        {
            "nats_servers": list(nats_standalone.urls),
            "nats_user": APP_USER,
            "nats_password": APP_PASSWORD,
            "nats_stream": unique_name("PLAYCFG"),
            "export_root": str(export_root),
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "failed=0" in result.stdout
    # ignore_errors counts the refused change as ignored, not failed.
    assert "ignored=1" in result.stdout
    assert APP_PASSWORD not in result.stdout
