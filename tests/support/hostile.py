"""Shared pieces of the hostile-input suite (tests/functional/hostile): module arguments, 'nothing lost'."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from support.servers import APP_PASSWORD, APP_USER
from support.streams import SyncJs


def app(server: Any, **args: Any) -> dict[str, Any]:
    """Module arguments that connect to ``server`` as the APP account."""
    return {"servers": list(server.urls), "user": APP_USER, "password": APP_PASSWORD, **args}


def js(server: Any) -> SyncJs:
    return SyncJs(list(server.urls), APP_USER, APP_PASSWORD)


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or ``path`` itself) with a digest of its content: what 'untouched' compares."""
    if path.is_symlink():
        return {".": f"symlink -> {path.readlink()}"}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    found = {}
    for entry in sorted(path.rglob("*")):
        key = str(entry.relative_to(path))
        found[key] = "dir" if entry.is_dir() else hashlib.sha256(entry.read_bytes()).hexdigest()
    return found


def hidden_leftovers(path: Path) -> list[str]:
    """Work in progress a run could leave beside its target (.NAME.partial-*, .NAME.replaced-*)."""
    return sorted(entry.name for entry in path.parent.iterdir() if entry.name.startswith(f".{path.name}."))
