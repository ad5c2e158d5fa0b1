"""Fixtures of the hostile-input suite: real file systems that fill up or are read-only."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a tmpfs of a given size (a real file system that fills up, or is read-only), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str = "256k", read_only: bool = False) -> Path:
        where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs (the suite runs as root, like molecule): {done.stderr!r}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)
