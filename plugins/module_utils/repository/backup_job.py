# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""The scheduled backup and its verification, as the backup host's systemd units run them (no controller, no
Ansible in the loop): ``natsops-backup run|verify|init --config FILE`` with the role's JSON config.

init:   create the repository unless it exists (exit 2 when it did: nothing changed).

run:    for each account, back its streams up into a spool directory (the collection's own backup code), then
        store that directory as one restic snapshot tagged with the account and the set's time, apply the
        retention policy, and publish metrics. The spool copy is removed once it is in the repository.
verify: ``restic check`` with a data subset, then a drill: each account's latest snapshot is extracted, its
        archives checked against their manifests and restored into a scratch nats-server on loopback, every
        stream compared with its backup; then the scratch server and its files go.

One run at a time: both take the same lock; a second waits up to ``lock_wait`` seconds, then skips and says so
(exit code 75, EX_TEMPFAIL). Progress goes to stdout a line at a time, which the journal keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    CONNECTION_ARGUMENT_SPEC,
    resolve_options,
    server_release,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import jetstream_session
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.backup import plan_backup, run_backup
from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.snapshot import (
    DEFAULT_CHUNK_SIZE,
    SnapshotOptions,
    SnapshotResult,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.repository.backup_metrics import (
    RUN_FIELDS,
    SKIP_FIELDS,
    VERIFY_FIELDS,
    BackupState,
    publish,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.repository.restic import (
    Repository,
    RepositorySettings,
    ResticError,
    Retention,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SKIPPED = 75  # EX_TEMPFAIL: another run holds the lock; try later

Log = Callable[[str], None]


def log_line(message: str) -> None:
    """One line of progress, flushed at once so the journal shows where a long run is."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@dataclass
class JobConfig:
    """The backup host's settings, as the backup_host role writes them (JSON, mode 0600)."""

    accounts: dict[str, dict[str, Any]]
    repository: RepositorySettings
    state_dir: Path
    spool_dir: Path
    streams: list[str] = field(default_factory=lambda: ["all"])
    retention: Retention = field(default_factory=Retention)
    prune: bool = True
    metrics_file: Path | None = None
    lock_wait: float = 0.0
    parallel: int = 4
    consumers: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    restic_timeout: float | None = None
    verify_read_data_subset: str = "5%"
    verify_drill: bool = True
    nats_server: str = "nats-server"

    @classmethod
    def load(cls, path: Path) -> JobConfig:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NatsOpsError(f"cannot read the backup settings {path}: {exc}", reason="bad_config") from None
        if not data.get("accounts"):
            raise NatsOpsError(f"{path} names no account to back up", reason="bad_config")
        verify = data.get("verify") or {}
        optional = {
            key: data[key]
            for key in ("streams", "prune", "lock_wait", "parallel", "consumers", "chunk_size", "restic_timeout")
            if data.get(key) is not None
        }
        return cls(
            accounts=data["accounts"],
            repository=RepositorySettings.from_dict(data["repository"]),
            state_dir=Path(data["state_dir"]),
            spool_dir=Path(data["spool_dir"]),
            retention=Retention(**(data.get("retention") or {})),
            metrics_file=Path(data["metrics_file"]) if data.get("metrics_file") else None,
            verify_read_data_subset=verify.get("read_data_subset", "5%"),
            verify_drill=verify.get("drill", True),
            nats_server=verify.get("nats_server", "nats-server"),
            **optional,
        )

    def streams_of(self, label: str) -> list[str]:
        """The account's own ``streams`` (names or patterns), else the job's."""
        return list(self.accounts[label].get("streams") or self.streams)

    def connection_options(self, label: str) -> dict[str, Any]:
        given = {key: value for key, value in self.accounts[label].items() if key != "streams"}
        unknown = sorted(set(given) - set(CONNECTION_ARGUMENT_SPEC))
        if unknown:
            raise NatsOpsError(f"account {label}: unknown connection options {', '.join(unknown)}", reason="bad_config")
        params = {name: spec.get("default") for name, spec in CONNECTION_ARGUMENT_SPEC.items()}
        params.update(given)
        return resolve_options(params)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def repository_handle(self) -> Repository:
        return Repository(self.repository, timeout=self.restic_timeout)


# -- one run at a time ------------------------------------------------------------------------------------------
class LockHeld(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str, wait: float, log: Log) -> Iterator[None]:
    """Hold the host's backup lock for the run; wait up to ``wait`` seconds for another run to end."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another run"
                if time.monotonic() >= deadline:
                    raise LockHeld(holder) from None
                if not announced:
                    log(f"waiting up to {wait:g}s for {holder} to finish")
                    announced = True
                time.sleep(1.0)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what} (pid {os.getpid()}, started {utc_stamp(iso=True)})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def utc_stamp(iso: bool = False) -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y%m%dT%H%M%SZ")


# -- the backup run ---------------------------------------------------------------------------------------------
@dataclass
class AccountOutcome:
    account: str
    snapshot: str = ""
    streams: int = 0
    bytes: int = 0
    data_added: int = 0
    error: str = ""
    reason: str = ""


def run_job(config: JobConfig, log: Log = log_line) -> int:
    """Back up every account into the repository; the exit code says how it went."""
    try:
        with exclusive(config.state_dir / "run.lock", "a backup run", config.lock_wait, log):
            # Read under the lock: the run that held it has published its set time by now.
            return _run_locked(config, BackupState.load(config.state_file), log)
    except LockHeld as held:
        log(f"skipped: {held.holder} holds the backup lock (set lock_wait to wait for it)")
        publish(BackupState(last_skipped=time.time()), config.state_file, config.metrics_file, SKIP_FIELDS)
        return EXIT_SKIPPED


def _run_locked(config: JobConfig, state: BackupState, log: Log) -> int:
    started = time.monotonic()
    stamp = utc_stamp()
    while stamp == state.last_set:  # a run within the second of the previous one (restic's tags name a set)
        time.sleep(0.2)
        stamp = utc_stamp()
    state.last_set = stamp
    repository = config.repository_handle()
    log(f"backup set {stamp}: {len(config.accounts)} account(s) into {describe_repository(config.repository.url)}")
    outcomes: list[AccountOutcome] = []
    try:
        repository.snapshots()  # reachable, opens with the password, before any server is asked anything
        state.repository_up = True
        for label in config.accounts:
            outcomes.append(back_up_account(config, repository, label, stamp, log))
            if outcomes[-1].reason in REPOSITORY_FAILURES:
                break  # the repository went away: the other accounts would fail the same way
    except ResticError as exc:
        outcomes.append(AccountOutcome(account="(repository)", error=exc.msg, reason=exc.failure.value))
        state.repository_up = False
        log(f"repository: {exc.msg}")
    failed = [outcome for outcome in outcomes if outcome.error]
    if any(outcome.reason in REPOSITORY_FAILURES for outcome in failed):
        state.repository_up = False
    if state.repository_up:
        _refresh_repository_facts(config, repository, state, log)
    now = time.time()
    state.last_attempt = now
    state.duration_seconds = round(time.monotonic() - started, 3)
    state.last_attempt_success = not failed
    state.last_attempt_reason = failed[0].reason if failed else ""
    for outcome in outcomes:
        if not outcome.error:
            state.account_last_success[outcome.account] = now
    if not failed:
        state.last_success = now
        state.bytes = sum(outcome.bytes for outcome in outcomes)
        state.streams = sum(outcome.streams for outcome in outcomes)
    publish(state, config.state_file, config.metrics_file, RUN_FIELDS)
    verdict = "failed: " + "; ".join(f"{o.account}: {o.error}" for o in failed) if failed else "complete"
    log(f"backup set {stamp} {verdict} in {state.duration_seconds:.1f}s")
    return EXIT_FAILED if failed else EXIT_OK


REPOSITORY_FAILURES = {"repository_unreachable", "repository_missing", "wrong_password", "repository_locked"}


def back_up_account(config: JobConfig, repository: Repository, label: str, stamp: str, log: Log) -> AccountOutcome:
    """One account: streams into the spool, the spool into one snapshot, retention; the spool copy removed."""
    outcome = AccountOutcome(account=label)
    spool = config.spool_dir / label
    shutil.rmtree(spool, ignore_errors=True)  # the spool is ours alone: a crashed run's leftovers
    spool.mkdir(parents=True, mode=0o700)
    target = spool / stamp
    try:
        results = asyncio.run(_back_up_streams(config, label, target, log))
        outcome.streams = len(results)
        outcome.bytes = sum(result.bytes for result in results)
        log(f"account {label}: {outcome.streams} stream(s), {outcome.bytes} bytes; storing in the repository")
        uploaded = time.monotonic()
        summary = repository.backup(target, label, stamp)
        outcome.snapshot = summary["snapshot_id"]
        outcome.data_added = int(summary.get("data_added") or 0)
        log(
            f"account {label}: snapshot {outcome.snapshot} stored in {time.monotonic() - uploaded:.1f}s "
            f"({outcome.data_added} new bytes in the repository)"
        )
        removed = repository.forget(label, config.retention, config.prune)
        if removed:
            log(f"account {label}: retention removed {len(removed)} snapshot(s)")
    except ResticError as exc:
        outcome.error, outcome.reason = exc.msg, exc.failure.value
        log(f"account {label}: {exc.msg}")
    except NatsOpsError as exc:
        outcome.error, outcome.reason = exc.msg, str(exc.details.get("reason") or "backup_failed")
        log(f"account {label}: {exc.msg}")
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return outcome


async def _back_up_streams(config: JobConfig, label: str, target: Path, log: Log) -> list[Any]:
    options = config.connection_options(label)
    snapshot_options = SnapshotOptions(
        consumers=config.consumers,
        check=False,
        chunk_size=config.chunk_size,
        window_size=None,
        stall_timeout=options["timeout"],
    )
    async with jetstream_session(options) as (connection, api):
        plan = await plan_backup(api, target, None, config.streams_of(label), server_release(connection.client))
        for warning in plan.warnings:
            log(f"account {label}: {warning}")
        log(f"account {label}: {len(plan.streams)} stream(s) to back up")

        def announce(stream: str, result: SnapshotResult | None) -> None:
            if result is None:
                log(f"account {label}: stream {stream} started")
            else:
                log(
                    f"account {label}: stream {stream} backed up: {result.messages} messages, {result.bytes} bytes "
                    f"in {result.duration:.1f}s ({result.bytes / 1e6 / max(result.duration, 1e-6):.1f} MB/s)"
                )

        return await run_backup(connection, api, plan, snapshot_options, config.parallel, False, announce)


def _refresh_repository_facts(config: JobConfig, repository: Repository, state: BackupState, log: Log) -> None:
    try:
        state.repository_size_bytes = repository.size()
        counts: dict[str, int] = {}
        for snapshot in repository.snapshots():
            if snapshot.account:
                counts[snapshot.account] = counts.get(snapshot.account, 0) + 1
        state.account_snapshots = counts
    except ResticError as exc:
        log(f"repository: could not read its size and snapshots: {exc.msg}")


def describe_repository(url: str) -> str:
    """The repository string without credentials a URL might carry (rest:https://user:pass@host/...)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# -- verification -----------------------------------------------------------------------------------------------
def verify_job(config: JobConfig, log: Log = log_line) -> int:
    started = time.monotonic()
    try:
        with exclusive(config.state_dir / "run.lock", "a verification", max(config.lock_wait, 3600.0), log):
            ok, reason = _verify_locked(config, log)
            now = time.time()
            state = BackupState(
                verify_last_attempt=now,
                verify_last_attempt_success=ok,
                verify_last_reason=reason,
                verify_last_success=now,
            )
            # A failed verification leaves the last success as saved.
            fields = VERIFY_FIELDS if ok else VERIFY_FIELDS - {"verify_last_success"}
            publish(state, config.state_file, config.metrics_file, fields)
    except LockHeld as held:
        log(f"skipped: {held.holder} holds the backup lock")
        return EXIT_SKIPPED
    log(f"verification {'passed' if ok else 'failed (' + reason + ')'} in {time.monotonic() - started:.1f}s")
    return EXIT_OK if ok else EXIT_FAILED


def _verify_locked(config: JobConfig, log: Log) -> tuple[bool, str]:
    repository = config.repository_handle()
    try:
        log(f"restic check (reading {config.verify_read_data_subset or 'no'} data)")
        repository.check(config.verify_read_data_subset)
        log("restic check passed")
        if not config.verify_drill:
            return True, ""
        config.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="natsops-verify-", dir=config.state_dir) as scratch:
            return _drill(config, repository, Path(scratch), log)
    except ResticError as exc:
        log(f"verification failed: {exc.msg}")
        return False, exc.failure.value
    except NatsOpsError as exc:
        log(f"verification failed: {exc.msg}")
        return False, str(exc.details.get("reason") or "drill_failed")


def _drill(config: JobConfig, repository: Repository, scratch: Path, log: Log) -> tuple[bool, str]:
    with scratch_server(config.nats_server, scratch / "server") as url:
        for label in config.accounts:
            snapshot = repository.find_set([label])[label]
            extracted = scratch / "restore" / label
            log(f"drill: account {label}: extracting snapshot {snapshot.short_id} (set {snapshot.set_stamp})")
            repository.restore(snapshot, extracted)
            result = asyncio.run(_restore_into(url, extracted))
            restored = result.get("restored") or []
            log(f"drill: account {label}: {len(restored)} stream(s) restored and compared with their backup")
            asyncio.run(_remove_streams(url, [entry["stream"] for entry in restored]))
    return True, ""


async def _restore_into(url: str, path: Path) -> dict[str, Any]:
    # The restore procedure of the stream_restore module, every check included (archives against manifests
    # first; each stream's messages, sequences and consumers against its backup after).
    from ansible_collections.natsops.jetstream.plugins.modules.stream_restore import restore

    params: dict[str, Any] = {name: spec.get("default") for name, spec in CONNECTION_ARGUMENT_SPEC.items()}
    params.update(
        servers=[url],
        path=str(path),
        streams=None,
        if_exists="fail",
        replicas=1,
        storage=None,
        verify_buckets=True,
        pause_consumers=None,
        cluster=None,
        tags=None,
        chunk_size=128 * 1024,
        parallel=None,
        safety_backup_dir=str(path.parent / "safety"),
        keep_safety_backup=False,
    )
    return await restore(params, check_mode=False)


async def _remove_streams(url: str, names: list[str]) -> None:
    params: dict[str, Any] = {name: spec.get("default") for name, spec in CONNECTION_ARGUMENT_SPEC.items()}
    params["servers"] = [url]
    async with jetstream_session(resolve_options(params)) as (_connection, api):
        for name in names:
            await api.delete_stream(name)


@contextlib.contextmanager
def scratch_server(binary: str, directory: Path) -> Iterator[str]:
    """A throw-away nats-server with JetStream on a free loopback port; killed and its files gone after."""
    executable = shutil.which(binary)
    if executable is None:
        raise NatsOpsError(f"nats-server not found ({binary}) for the restore drill", reason="nats_server_missing")
    directory.mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = directory / "scratch.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\nserver_name: natsops_verify\njetstream {{ store_dir: "{directory / "store"}" }}\n'
    )
    process = subprocess.Popen([executable, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NatsOpsError("the scratch nats-server for the drill exited at start", reason="drill_failed")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise NatsOpsError("the scratch nats-server for the drill did not start within 20s", reason="drill_failed")


# -- set-up -----------------------------------------------------------------------------------------------------
EXIT_INITIALISED = 0
EXIT_ALREADY = 2  # for the role's changed_when: nothing was done


def init_job(config: JobConfig, log: Log = log_line) -> int:
    """Create the repository unless one opens there with the password (a wrong password is an error, never a
    reason to make another repository)."""
    repository = config.repository_handle()
    try:
        if repository.exists():
            log(f"repository {describe_repository(config.repository.url)} exists and opens with the password")
            return EXIT_ALREADY
        repository.init()
    except ResticError as exc:
        log(f"error: {exc.msg}")
        return EXIT_FAILED
    log(f"repository {describe_repository(config.repository.url)} initialised")
    return EXIT_INITIALISED


# -- entry point ------------------------------------------------------------------------------------------------
COMMANDS = {"run": run_job, "verify": verify_job, "init": init_job}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="natsops-backup", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", required=True, type=Path, help="the JSON settings the backup_host role writes")
    arguments = parser.parse_args(argv)
    try:
        config = JobConfig.load(arguments.config)
    except NatsOpsError as exc:
        log_line(f"error: {exc.msg}")
        return EXIT_FAILED
    os.umask(0o077)  # spool, state and scratch files are for this host's backup user only
    return COMMANDS[arguments.command](config)
