"""The textfile-collector file the scheduled backups write."""

from __future__ import annotations

from ansible_collections.natsops.jetstream.plugins.module_utils.repository.backup_metrics import BackupState, render


def samples(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_timestamps_are_exact_and_labels_escaped():
    state = BackupState(
        last_success=1796225123.456,
        last_attempt=1796225130.0,
        last_attempt_reason='say "why"',
        account_last_success={"APP": 1796225123.0},
    )
    shown = samples(render(state))
    assert shown["natsops_backup_last_success_timestamp_seconds"] == "1796225123.456"
    assert shown["natsops_backup_last_attempt_timestamp_seconds"] == "1796225130"
    assert shown['natsops_backup_account_last_success_timestamp_seconds{account="APP"}'] == "1796225123"
    assert shown['natsops_backup_last_attempt_success{reason="say \\"why\\""}'] == "0"


def test_every_metric_has_help_and_type():
    text = render(BackupState())
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names == {line.split()[2] for line in text.splitlines() if line.startswith("# HELP")}
    assert len(names) == 14
