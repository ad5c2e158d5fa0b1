"""What the repository holds, and the latest snapshot taken out, with the job's own code (run on the backup host as the
backup user, with the job's venv and settings):

    repo_tool.py snapshots CONFIG             # JSON: every snapshot (id, account, set, time, tags), oldest first
    repo_tool.py extract CONFIG ACCOUNT DIR   # the account's latest snapshot into DIR (new); JSON: the snapshot
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, "/opt/natsops-backup/collections")

from ansible_collections.natsops.jetstream.plugins.module_utils.repository.backup_job import JobConfig


def main(command: str, config: str, *rest: str) -> int:
    repository = JobConfig.load(Path(config)).repository_handle()
    if command == "snapshots":
        print(json.dumps([snapshot.as_dict() for snapshot in repository.snapshots()]))
        return 0
    account, target = rest
    snapshot = repository.find_set([account])[account]
    repository.restore(snapshot, Path(target))
    print(json.dumps(snapshot.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
