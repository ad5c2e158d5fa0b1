"""The backup host's scheduled job (natsops-backup run / verify) against a real nats-server and a real restic
repository (Debian's restic): snapshots, retention, metrics, verification with a restore drill, and failures
that leave no snapshot behind."""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.repository.backup_job import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SKIPPED,
    JobConfig,
    main,
    run_job,
    verify_job,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.repository.restic import Repository
from support.modules import ModuleFailed, run_module
from support.playbooks import PlaybookRun
from support.servers import APP_PASSWORD, APP_USER, OTHER_PASSWORD, OTHER_USER
from support.streams import SyncJs
from support.threads import Outcome

REPOSITORY_PASSWORD = "correct horse battery staple"


def make_stream(server: Any, name: str, count: int = 200) -> dict[str, Any]:
    client = SyncJs(list(server.urls), APP_USER, APP_PASSWORD)
    client.create_stream(name)
    client.publish(f"{name}.a", count, size=300, with_headers_every=4)
    client.create_durable(name, "WORKER")
    client.consume_and_ack(name, "WORKER", fetch=min(50, count), ack=min(40, count))
    return client.snapshot_of(name)


def job_config(tmp_path: Path, server: Any, streams: list[str], restic: Path | None = None, **extra: Any) -> Path:
    """The job's settings; ``restic``: a wrapper script run instead of restic (see ``restic_wrapper``)."""
    password_file = tmp_path / "repository.password"
    if not password_file.exists():
        password_file.write_text(REPOSITORY_PASSWORD + "\n")
    repository_settings = {"url": str(tmp_path / "repository"), "password_file": str(password_file), "host": "test"}
    if restic is not None:
        repository_settings["restic"] = str(restic)
    data = {
        "accounts": {"APP": {"servers": list(server.urls), "user": APP_USER, "password": APP_PASSWORD}},
        "streams": streams,
        "repository": repository_settings,
        "state_dir": str(tmp_path / "state"),
        "spool_dir": str(tmp_path / "spool"),
        "metrics_file": str(tmp_path / "textfile" / "natsops_backup.prom"),
        "retention": {"last": 2},
        "verify": {"read_data_subset": "100%", "nats_server": str(Path(sys.executable).parent / "nats-server")},
        **extra,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def restic_wrapper(path: Path, body: str) -> Path:
    """A shell script in place of restic: ``body`` decides what happens to each restic command ("$@")."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def repository(config_path: Path) -> Repository:
    return JobConfig.load(config_path).repository_handle()


def metrics(tmp_path: Path) -> dict[str, str]:
    samples = {}
    for line in (tmp_path / "textfile" / "natsops_backup.prom").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = value
    return samples


class Lines(list):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def initialised(tmp_path: Path, nats_standalone: Any, unique_name: Any) -> tuple[Path, list[str]]:
    names = [unique_name("JOBA"), unique_name("JOBB")]
    for name in names:
        make_stream(nats_standalone, name)
    config = job_config(tmp_path, nats_standalone, names)
    repository(config).init()
    return config, names


def test_runs_store_snapshots_keep_the_policy_and_publish_metrics(initialised, tmp_path, nats_standalone):
    config, names = initialised
    for _run in range(3):
        lines = Lines()
        assert run_job(JobConfig.load(config), lines) == EXIT_OK, lines
    kept = repository(config).snapshots("APP")
    assert len(kept) == 2, "retention keeps the last 2"
    assert all({"natsops", "account:APP"} <= set(snapshot.tags) and snapshot.set_stamp for snapshot in kept)
    started = lines.index(f"account APP: stream {names[0]} started")
    finished = next(i for i, line in enumerate(lines) if f"stream {names[0]} backed up" in line and "MB/s" in line)
    stored = next(i for i, line in enumerate(lines) if "storing in the repository" in line)
    assert started < finished < stored, lines
    assert not list((tmp_path / "spool").glob("*/*")), "the spool copy goes once it is in the repository"
    shown = metrics(tmp_path)
    assert shown['natsops_backup_last_attempt_success{reason="none"}'] == "1"
    assert shown["natsops_backup_repository_up"] == "1"
    assert shown["natsops_backup_streams"] == "2"
    assert shown['natsops_backup_account_snapshots{account="APP"}'] == "2"
    assert float(shown["natsops_backup_last_success_timestamp_seconds"]) > 0
    assert int(shown["natsops_backup_repository_size_bytes"]) > 0
    logged = "\n".join(lines)
    assert REPOSITORY_PASSWORD not in logged and APP_PASSWORD not in logged


def test_the_latest_snapshot_is_what_a_restore_takes_out(initialised, tmp_path, nats_standalone, fresh_standalone):
    config, names = initialised
    client = SyncJs(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    expected = {name: client.snapshot_of(name) for name in names}
    store = repository(config)
    extracted = tmp_path / "restored"
    store.restore(store.find_set(["APP"])["APP"], extracted)
    assert sorted(path.name for path in extracted.iterdir()) == sorted(names)
    assert all(
        (extracted / name / "backup.json").exists() and (extracted / name / "stream.tar.s2").exists() for name in names
    )
    run_module(
        "stream_restore",
        {"servers": list(fresh_standalone.urls), "user": APP_USER, "password": APP_PASSWORD, "path": str(extracted)},
    )
    restored = SyncJs(list(fresh_standalone.urls), APP_USER, APP_PASSWORD)
    assert {name: restored.snapshot_of(name) for name in names} == expected


def test_verification_checks_the_repository_and_drills_a_restore(initialised, tmp_path):
    config, _names = initialised
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    lines = Lines()
    assert verify_job(JobConfig.load(config), lines) == EXIT_OK, lines
    assert any("restored and compared" in line for line in lines), lines
    assert lines[-1].startswith("verification passed in "), lines
    shown = metrics(tmp_path)
    assert shown['natsops_backup_verify_last_success{reason="none"}'] == "1"
    assert float(shown["natsops_backup_verify_last_success_timestamp_seconds"]) > 0


def test_a_damaged_repository_fails_verification(initialised, tmp_path):
    config, _names = initialised
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    assert verify_job(JobConfig.load(config), Lines()) == EXIT_OK
    passed = metrics(tmp_path)["natsops_backup_verify_last_success_timestamp_seconds"]
    pack = max(
        (tmp_path / "repository" / "data").rglob("*"), key=lambda path: path.stat().st_size if path.is_file() else 0
    )
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.chmod(0o600)
    pack.write_bytes(bytes(data))
    lines = Lines()
    assert verify_job(JobConfig.load(config), lines) == EXIT_FAILED
    assert metrics(tmp_path)['natsops_backup_verify_last_success{reason="failed"}'] == "0"
    assert metrics(tmp_path)["natsops_backup_verify_last_success_timestamp_seconds"] == passed, "kept from the pass"


def test_a_wrong_password_fails_the_run_and_stores_nothing(initialised, tmp_path):
    config, _names = initialised
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    before = repository(config).snapshots()
    good = (tmp_path / "repository.password").read_text()
    (tmp_path / "repository.password").write_text("not the password\n")
    lines = Lines()
    assert run_job(JobConfig.load(config), lines) == EXIT_FAILED
    assert any("password" in line for line in lines), lines
    shown = metrics(tmp_path)
    assert shown['natsops_backup_last_attempt_success{reason="wrong_password"}'] == "0"
    assert shown["natsops_backup_repository_up"] == "0"
    assert float(shown["natsops_backup_last_success_timestamp_seconds"]) > 0, "the last success is remembered"
    (tmp_path / "repository.password").write_text(good)
    assert repository(config).snapshots() == before


def test_an_unreachable_repository_fails_the_run_and_says_so(tmp_path, nats_standalone, unique_name, free_port):
    name = unique_name("JOBU")
    make_stream(nats_standalone, name, count=10)
    config = job_config(
        tmp_path,
        nats_standalone,
        [name],
        repository={
            "url": "sftp:backup@127.0.0.1:/srv/repository",
            "password_file": str(tmp_path / "pw"),
            "sftp_command": f"ssh -p {free_port} -o BatchMode=yes -o ConnectTimeout=3 backup@127.0.0.1 -s sftp",
        },
    )
    (tmp_path / "pw").write_text("x\n")
    lines = Lines()
    assert run_job(JobConfig.load(config), lines) == EXIT_FAILED
    assert metrics(tmp_path)['natsops_backup_last_attempt_success{reason="repository_unreachable"}'] == "0"
    assert not list((tmp_path / "spool").glob("*/*"))


def test_an_upload_cut_short_is_not_a_snapshot(tmp_path, nats_standalone, unique_name):
    name = unique_name("JOBBIG")
    client = SyncJs(list(nats_standalone.urls), APP_USER, APP_PASSWORD)
    client.create_stream(name)
    client.publish(f"{name}.a", 3000, size=32 * 1024)  # about 100 MB of random payloads: restic takes a while
    # restic, killed as soon as its first pack of data is in the repository (as a host losing power mid-upload)
    restic = restic_wrapper(
        tmp_path / "cut-restic",
        'if [ "$1" != backup ]; then exec restic "$@"; fi\n'
        f"touch {tmp_path}/started\n"
        'restic "$@" & pid=$!\n'
        f'until [ -n "$(find {tmp_path}/repository/data -type f -newer {tmp_path}/started)" ]; do sleep 0.02; done\n'
        "kill -9 $pid\nexit 1\n",
    )
    config = job_config(tmp_path, nats_standalone, [name], restic=restic)
    repository(config).init()
    assert run_job(JobConfig.load(config), Lines()) == EXIT_FAILED
    assert repository(config).snapshots() == [], "no snapshot from an upload that did not finish"
    assert metrics(tmp_path)['natsops_backup_last_attempt_success{reason="failed"}'] == "0"


def test_a_second_run_skips_while_one_holds_the_lock_and_says_so(initialised, tmp_path):
    config, _names = initialised
    lock = tmp_path / "state" / "run.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("a backup run (pid 1, started then)")
        handle.flush()
        lines = Lines()
        assert run_job(JobConfig.load(config), lines) == EXIT_SKIPPED
    assert any("skipped" in line and "a backup run (pid 1" in line for line in lines), lines
    assert float(metrics(tmp_path)["natsops_backup_last_skipped_timestamp_seconds"]) > 0
    assert repository(config).snapshots() == []


def test_a_run_that_held_the_lock_keeps_what_a_skipped_run_published(tmp_path, nats_standalone, unique_name):
    """Each run publishes only what it owns onto the state as saved then: the run that held the lock, ending
    after a skipped one, does not put back the skip time it read before."""
    name = unique_name("JOBHELD")
    make_stream(nats_standalone, name)
    # restic whose backup waits until the test opens the gate: the run holds the lock meanwhile
    gated = restic_wrapper(
        tmp_path / "gated-restic",
        f'if [ "$1" = backup ]; then touch {tmp_path}/holding; until [ -e {tmp_path}/gate ]; do sleep 0.05; done; fi\n'
        'exec restic "$@"\n',
    )
    config = job_config(tmp_path, nats_standalone, [name], restic=gated)
    repository(config).init()
    holder = Outcome(lambda: run_job(JobConfig.load(config), Lines()))
    holder.wait_for((tmp_path / "holding").exists, interval=0.05)
    assert run_job(JobConfig.load(config), Lines()) == EXIT_SKIPPED
    skipped = float(metrics(tmp_path)["natsops_backup_last_skipped_timestamp_seconds"])
    (tmp_path / "gate").touch()
    assert holder.error(timeout=120) is None and holder.result == EXIT_OK
    published = metrics(tmp_path)
    assert float(published["natsops_backup_last_skipped_timestamp_seconds"]) == skipped > 0
    assert float(published["natsops_backup_last_success_timestamp_seconds"]) > skipped


def test_init_creates_the_repository_once_and_never_over_a_wrong_password(tmp_path, nats_standalone, capsys):
    config = job_config(tmp_path, nats_standalone, ["all"])
    assert main(["init", "--config", str(config)]) == 0
    assert main(["init", "--config", str(config)]) == 2, "exists: nothing changed"
    (tmp_path / "repository.password").write_text("another password\n")
    assert main(["init", "--config", str(config)]) == EXIT_FAILED
    assert "password" in capsys.readouterr().out


def repository_args(tmp_path: Path, **args: Any) -> dict[str, Any]:
    return {"repository": str(tmp_path / "repository"), "password": REPOSITORY_PASSWORD, **args}


def test_the_module_lists_and_fetches_a_set_checked_and_idempotent(initialised, tmp_path, fresh_standalone):
    config, names = initialised
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    listed = run_module("backup_repository", repository_args(tmp_path, accounts=["APP"]))
    assert [item["account"] for item in listed["snapshots"]] == ["APP", "APP"]
    first = listed["snapshots"][0]
    dest = tmp_path / "fetched"
    args = repository_args(tmp_path, accounts=["APP"], state="fetched", dest=str(dest), snapshot=first["set"])
    planned = run_module("backup_repository", args, check_mode=True)
    assert planned["changed"] and planned["snapshots_fetched"]["APP"]["id"] == first["id"] and not dest.exists()
    taken = run_module("backup_repository", args)
    assert taken["changed"] and sorted(taken["streams"]["APP"]) == sorted(names) and taken["set"] == first["set"]
    summary = json.loads((dest / "summary.json").read_text())
    assert summary["accounts"]["APP"]["snapshot"] == first["id"] and summary["started"].endswith("Z")
    assert run_module("backup_repository", args)["changed"] is False, "the same set is already there"
    second = listed["snapshots"][1]
    shared = next((first["id"][:n] for n in range(12, -1, -1) if second["id"].startswith(first["id"][:n])), "")
    with pytest.raises(NatsOpsError) as ambiguous:
        repository(config).find_set(["APP"], shared)
    assert ambiguous.value.details["reason"] == "ambiguous_snapshot"
    assert sorted(ambiguous.value.details["matching"]) == sorted([first["id"], second["id"]])
    latest = repository_args(tmp_path, accounts=["APP"], state="fetched", dest=str(dest))
    with pytest.raises(ModuleFailed) as refused:
        run_module("backup_repository", latest)
    assert refused.value.result["reason"] == "target_exists"
    restored = run_module(
        "stream_restore",
        {"servers": list(fresh_standalone.urls), "user": APP_USER, "password": APP_PASSWORD, "path": f"{dest}/APP"},
    )
    assert sorted(entry["stream"] for entry in restored["restored"]) == sorted(names)


def test_latest_is_the_newest_set_that_holds_every_account(initialised, tmp_path, nats_standalone):
    config, _names = initialised
    data = json.loads(config.read_text())
    data["accounts"]["OTHER"] = {
        "servers": list(nats_standalone.urls),
        "user": OTHER_USER,
        "password": OTHER_PASSWORD,
        "streams": ["OTHERS"],
    }
    data["retention"] = {}
    config.write_text(json.dumps(data))
    assert run_job(JobConfig.load(config), Lines()) == EXIT_FAILED, "OTHER has no stream OTHERS yet: it fails"
    store = repository(config)
    only_app = store.snapshots("APP")[-1].set_stamp
    assert not store.snapshots("OTHER")
    SyncJs(list(nats_standalone.urls), OTHER_USER, OTHER_PASSWORD).create_stream("OTHERS")
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    both = store.snapshots("OTHER")[-1].set_stamp
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    data["accounts"]["OTHER"]["password"] = "wrong"
    config.write_text(json.dumps(data))
    assert run_job(JobConfig.load(config), Lines()) == EXIT_FAILED, "OTHER fails; APP gets a newer set alone"
    newest_app = store.snapshots("APP")[-1].set_stamp
    assert newest_app > both > only_app
    chosen = store.find_set(["APP", "OTHER"])
    assert {item.set_stamp for item in chosen.values()} == {max(item.set_stamp for item in store.snapshots("OTHER"))}
    assert store.find_set(["APP"])["APP"].set_stamp == newest_app


def test_the_module_says_why_it_cannot_open_the_repository(initialised, tmp_path):
    _config, _names = initialised
    with pytest.raises(ModuleFailed) as wrong:
        run_module("backup_repository", repository_args(tmp_path, password="not it"))
    assert wrong.value.result["reason"] == "wrong_password"
    assert "not it" not in json.dumps(wrong.value.result)
    with pytest.raises(ModuleFailed) as missing:
        run_module(
            "backup_repository", repository_args(tmp_path, account="APP", state="fetched", dest=str(tmp_path / "x"))
        )
    assert missing.value.result["reason"] == "no_snapshot"


def test_no_repository_secret_shows_in_ansible_output(initialised, tmp_path):
    """backup_repository has its own secrets (the repository password, the backend's variables), not the NATS
    credentials test_hostile_secrets runs every other module with."""
    config, _names = initialised
    assert run_job(JobConfig.load(config), Lines()) == EXIT_OK
    backend_secret = "backend-secret-7f3a21"
    runs = {
        "listed": repository_args(tmp_path, env={"AWS_SECRET_ACCESS_KEY": backend_secret}),
        "fetched": repository_args(tmp_path, accounts=["APP"], state="fetched", dest=str(tmp_path / "out")),
        "wrong password": repository_args(tmp_path, password="wrong-" + REPOSITORY_PASSWORD),
    }
    for label, args in runs.items():
        run = PlaybookRun(tmp_path / "playbooks", "backup_repository", args, verbosity=3)
        result = run.result()
        assert bool(result.get("failed")) == (label == "wrong password"), (label, result)
        for secret in (REPOSITORY_PASSWORD, backend_secret):
            assert secret not in run.output, f"{label}: a secret in the output of ansible-playbook -vvv"
