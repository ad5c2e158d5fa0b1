"""Make a backup's record of the source disagree with its data, the way only a restore can notice.

    tamper.py STREAM_DIR   # backup.json claims one message more than stream.tar.s2 holds

The manifest's size and sha256 of backup.json are recomputed, so every check before the restore passes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def main(stream_dir: str) -> None:
    directory = Path(stream_dir)
    backup_json = directory / "backup.json"
    backup = json.loads(backup_json.read_text())
    backup["state"]["messages"] += 1
    backup["state"]["last_seq"] += 1
    data = json.dumps(backup, indent=2).encode()
    backup_json.write_bytes(data)
    manifest_json = directory / "manifest.json"
    manifest = json.loads(manifest_json.read_text())
    manifest["files"]["backup.json"].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest_json.write_text(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
