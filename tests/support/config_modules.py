"""Running the stream, consumer and jetstream_config modules against a test server as the APP account."""

from __future__ import annotations

from typing import Any

import pytest
from support.modules import ModuleFailed, run_module
from support.servers import APP_PASSWORD, APP_USER
from support.streams import SyncJs


def fill(value: Any, **names: str) -> Any:
    """Test settings with names put in: ``"{name}.>"`` with name="ORDERS" is ``"ORDERS.>"``."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [fill(item, **names) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, **names) for key, item in value.items()}
    return value


def require_release(server_version: tuple[int, int, int], release: tuple[int, int]) -> None:
    """Skip a test on servers older than ``release``."""
    if server_version[:2] < release:
        pytest.skip(f"needs nats-server {'.'.join(map(str, release))}+")


def app_args(server: Any, **args: Any) -> dict[str, Any]:
    return {"servers": list(server.urls), "user": APP_USER, "password": APP_PASSWORD, **args}


def apply(module: str, server: Any, check_mode: bool = False, diff: bool = True, **args: Any) -> dict[str, Any]:
    """Run the module (with --diff by default) and return its result."""
    return run_module(module, {**app_args(server, **args), "_ansible_diff": diff}, check_mode=check_mode)


def refused(module: str, server: Any, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    """Run the module, which must fail; return its result."""
    with pytest.raises(ModuleFailed) as failed:
        apply(module, server, check_mode=check_mode, **args)
    return failed.value.result


def js(server: Any) -> SyncJs:
    return SyncJs(list(server.urls), APP_USER, APP_PASSWORD)


def stream_config(server: Any, name: str) -> dict[str, Any] | None:
    info = js(server).stream_info(name)
    return None if info is None else info["config"]


def consumer_info(server: Any, stream: str, name: str) -> dict[str, Any] | None:
    try:
        return js(server).request(f"CONSUMER.INFO.{stream}.{name}")
    except RuntimeError as exc:
        if "10014" in str(exc):
            return None
        raise


def without_server_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration without the server's own _nats.* metadata (its version changes the values)."""
    kept = {key: value for key, value in (config.get("metadata") or {}).items() if not key.startswith("_nats.")}
    cleaned = {key: value for key, value in config.items() if key != "metadata"}
    return {**cleaned, "metadata": kept} if kept else cleaned
