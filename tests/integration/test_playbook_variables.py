"""The procedure playbooks' variables: natsops_* names, the old names still read (with a deprecation warning
the user sees), the shared defaults, and the restore report other plays read.

The playbooks run through ansible-playbook against real nats-server processes, with the variables where users
keep them: an inventory, a vars file, the vars of an import_playbook.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.playbooks import run_playbook
from support.servers import APP_PASSWORD, APP_USER, NatsNode
from support.streams import SyncJs, progress

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO_ROOT / "playbooks"
APP = {"user": APP_USER, "password": APP_PASSWORD}
SETTINGS = yaml.safe_load((PLAYBOOKS / "vars" / "natsops_defaults.yml").read_text())
RENAMED = SETTINGS["_natsops_renamed"]


def ansible_playbook(playbook: str, tmp_path: Path, inventory: dict | None = None, extra_vars: dict | None = None):
    """``playbook`` run from ``tmp_path``, deprecation warnings shown whatever the environment says."""
    return run_playbook(
        playbook,
        tmp_path,
        extra_vars=extra_vars,
        inventory=inventory,
        env={"ANSIBLE_DEPRECATION_WARNINGS": "true"},
        cwd=tmp_path,
    )


def output(run: subprocess.CompletedProcess) -> str:
    return run.stdout[-6000:] + run.stderr[-3000:]


def deprecated(run: subprocess.CompletedProcess) -> set[str]:
    """The old names the run warned about (ansible prints deprecations on stderr, one line each)."""
    text = re.sub(r"\s+", " ", run.stdout + run.stderr)
    return set(re.findall(r"\[DEPRECATION WARNING\]: The variable (\w+) of the natsops\.jetstream playbooks", text))


def localhost_inventory(variables: dict) -> dict:
    """An inventory as users write it: the shared variables in all's vars (group_vars/all)."""
    return {"all": {"vars": variables, "hosts": {"localhost": {"ansible_connection": "local"}}}}


def load(source: NatsNode, prefix: str) -> dict[str, dict]:
    client = SyncJs(source.urls, APP_USER, APP_PASSWORD)
    names = [f"{prefix}_A", f"{prefix}_B"]
    for index, name in enumerate(names):
        client.create_stream(name)
        client.publish(f"{name}.x", 40 * (index + 1), size=100)
        client.create_durable(name, "WORKER")
        client.consume_and_ack(name, "WORKER", fetch=10, ack=5)
    return {name: client.snapshot_of(name) for name in names}


def test_an_inventory_written_for_the_old_names_still_works_and_says_what_to_rename(
    nats_standalone: NatsNode, fresh_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    prefix = unique_name("OLD")
    source = load(nats_standalone, prefix)
    root = tmp_path / "old-root"
    inventory = localhost_inventory(
        {
            "natsops_accounts": {"APP": {"servers": nats_standalone.urls, **APP}},
            "backup_root": str(root),
            "backup_keep": 1,
            "backup_streams": [f"{prefix}_*"],
        }
    )
    for _run in range(2):
        run = ansible_playbook("natsops.jetstream.backup", tmp_path, inventory)
        assert run.returncode == 0, output(run)
        time.sleep(1.1)  # sets are named by the second
    assert deprecated(run) == {"backup_root", "backup_keep", "backup_streams"}, output(run)
    assert "rename it natsops_backup_root" in re.sub(r"\s+", " ", run.stderr)
    kept = sorted(path.name for path in root.iterdir())
    assert len(kept) == 1, kept  # backup_keep: 1 was obeyed, in the root backup_root named
    summary = json.loads((root / kept[0] / "summary.json").read_text())
    assert sorted(entry["stream"] for entry in summary["accounts"]["APP"]["streams"]) == sorted(source)

    inventory["all"]["vars"] = {
        "natsops_accounts": {"APP": {"servers": fresh_standalone.urls, **APP}},
        "backup_root": str(root),
        "restore_streams": [f"{prefix}_A"],
        "restore_if_exists": "fail",
    }
    run = ansible_playbook("natsops.jetstream.restore", tmp_path, inventory)
    assert run.returncode == 0, output(run)
    assert deprecated(run) == {"backup_root", "restore_streams", "restore_if_exists"}, output(run)
    target = SyncJs(fresh_standalone.urls, APP_USER, APP_PASSWORD)
    assert progress(target.snapshot_of(f"{prefix}_A")) == progress(source[f"{prefix}_A"])
    assert not target.exists(f"{prefix}_B"), "restore_streams was obeyed"


def test_the_natsops_names_give_no_warning_and_the_restore_report_is_published(
    nats_standalone: NatsNode, fresh_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    prefix = unique_name("NEW")
    source = load(nats_standalone, prefix)
    root = tmp_path / "root"
    run = ansible_playbook(
        "natsops.jetstream.backup",
        tmp_path,
        extra_vars={
            "natsops_accounts": {"APP": {"servers": nats_standalone.urls, **APP}},
            "natsops_backup_root": str(root),
            "natsops_backup_streams": [f"{prefix}_*"],
            "natsops_backup_keep": 0,
        },
    )
    assert run.returncode == 0, output(run)
    assert "DEPRECATION" not in run.stdout + run.stderr, output(run)
    assert f"APP/{prefix}_A: 40 messages up to sequence 40" in run.stdout

    # Another play reads the report: a playbook that imports the restore, as rebuild_cluster does.
    report_file = tmp_path / "report.json"
    playbook = tmp_path / "restore-and-read.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Restore",
                    "ansible.builtin.import_playbook": "natsops.jetstream.restore",
                    "vars": {
                        "natsops_accounts": {"APP": {"servers": fresh_standalone.urls, **APP}},
                        "natsops_backup_root": str(root),
                    },
                },
                {
                    "name": "Read the report",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Keep it",
                            "ansible.builtin.copy": {
                                "content": "{{ hostvars['localhost'].natsops_restore_report | to_json }}",
                                "dest": str(report_file),
                                "mode": "0644",
                            },
                        }
                    ],
                },
            ]
        )
    )
    run = ansible_playbook(str(playbook), tmp_path)
    assert run.returncode == 0, output(run)
    assert "DEPRECATION" not in run.stdout + run.stderr, output(run)
    report = json.loads(report_file.read_text())
    (backup_set,) = [path for path in root.iterdir() if path.is_dir()]
    summary = json.loads((backup_set / "summary.json").read_text())
    assert report["backup"] == str(backup_set)
    assert (report["started"], report["finished"]) == (summary["started"], summary["finished"])
    assert report["skipped"] == []
    assert sorted(report["streams"], key=lambda entry: entry["stream"]) == [
        {
            "account": "APP",
            "stream": name,
            "action": "restored",
            "messages": snapshot["messages"],
            "last_seq": snapshot["last_seq"],
            "verified": True,
        }
        for name, snapshot in sorted(source.items())
    ]


def test_both_names_set_the_new_one_wins_and_the_old_one_is_named(
    nats_standalone: NatsNode, tmp_path: Path, unique_name
) -> None:
    prefix = unique_name("BOTH")
    load(nats_standalone, prefix)
    root = tmp_path / "root"
    run = ansible_playbook(
        "natsops.jetstream.backup",
        tmp_path,
        localhost_inventory({"backup_root": str(tmp_path / "old"), "natsops_backup_root": str(root)}),
        {
            "natsops_accounts": {"APP": {"servers": nats_standalone.urls, **APP}},
            "natsops_backup_streams": [f"{prefix}_*"],
        },
    )
    assert run.returncode == 0, output(run)
    assert root.is_dir() and not (tmp_path / "old").exists()
    assert deprecated(run) == {"backup_root"}
    assert "natsops_backup_root is set too and wins: remove backup_root" in re.sub(r"\s+", " ", run.stderr)


# ------------------------------------------------------------------------------------------ static checks

PLAYBOOK_FILES = sorted(PLAYBOOKS.glob("*.yml"))


def header(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not (line.startswith("#") or line == "---"):
            break
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda path: path.stem)
def test_every_setting_a_playbook_reads_is_known_and_documented(path: Path) -> None:
    text = path.read_text()
    used = set(re.findall(r"_natsops\.(\w+)", text))
    known = set(SETTINGS["_natsops_defaults"]) | set(RENAMED) | set(SETTINGS["_natsops_undefaulted"])
    assert used <= known, f"{path.name} reads settings that natsops_defaults.yml does not know: {used - known}"
    documented = header(path) + (header(PLAYBOOKS / "deploy.yml") + header(PLAYBOOKS / "restore.yml"))
    for name in used:
        assert f"natsops_{name}" in documented, f"{path.name} reads natsops_{name} without documenting it"
    for name in RENAMED:  # no old name is documented as the variable to set
        assert not re.search(rf"^#\s+{name}:", header(path), re.MULTILINE), f"{path.name} documents {name}"
        assert not re.search(rf"(?<![\w.]){name}(?!\w)", text.split("\n- ", 1)[1]), f"{path.name} reads {name}"


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda path: path.stem)
def test_every_play_that_reads_settings_loads_them(path: Path) -> None:
    for play in yaml.safe_load(path.read_text()):
        if "ansible.builtin.import_playbook" in play:
            continue
        if "_natsops" in yaml.safe_dump(play):
            assert play.get("vars_files") == ["vars/natsops_defaults.yml"], f"{path.name}: {play['name']}"


def test_the_readme_names_every_old_name_and_its_new_one() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for name in RENAMED:
        assert f"`{name}`" in readme and f"`natsops_{name}`" in readme, name
