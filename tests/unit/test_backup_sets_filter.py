"""The filters behind the procedure playbooks: backup sets (summary, retention, latest), the restore report, and
the settings (natsops_ names, old names with a deprecation warning, shared defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.natsops.jetstream.plugins.filter import backup_sets, natsops_settings
from ansible_collections.natsops.jetstream.plugins.filter.backup_sets import (
    backup_latest,
    backup_lines,
    backup_retention,
    backup_summary,
    restore_lines,
    restore_report,
)
from ansible_collections.natsops.jetstream.plugins.filter.natsops_settings import natsops_settings as settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ROOT = "/srv/backups/nats"


def saved(stream: str, messages: int, byte_count: int) -> dict:
    return {"stream": stream, "messages": messages, "last_seq": messages, "bytes": byte_count, "consumers": []}


BACKUP_RESULTS = {
    "changed": True,
    "results": [
        {
            "item": "APP",
            "path": f"{ROOT}/20261123T120000Z/APP",
            "backups": [saved("ORDERS", 5000, 1000), saved("EVENTS", 300, 200)],
            "skipped_streams": [{"stream": "CACHE", "reason": "memory storage"}],
            "total_bytes": 1200,
            "duration": 0.5,
        },
        {
            "item": "OTHER",
            "path": f"{ROOT}/20261123T120000Z/OTHER",
            "backups": [],
            "skipped_streams": [],
            "total_bytes": 0,
            "duration": 0.01,
        },
    ],
}


# ------------------------------------------------------------------------------------------- backup summary


def test_the_summary_holds_each_account_and_the_totals():
    summary = backup_summary(BACKUP_RESULTS, "20261123T120000Z", "2026-11-23T12:00:00Z", "2026-11-23T12:00:02Z")
    assert summary == {
        "backup": "20261123T120000Z",
        "started": "2026-11-23T12:00:00Z",
        "finished": "2026-11-23T12:00:02Z",
        "total_bytes": 1200,
        "accounts": {
            "APP": {
                "path": f"{ROOT}/20261123T120000Z/APP",
                "total_bytes": 1200,
                "duration": 0.5,
                "streams": BACKUP_RESULTS["results"][0]["backups"],
                "skipped": [{"stream": "CACHE", "reason": "memory storage"}],
            },
            "OTHER": {
                "path": f"{ROOT}/20261123T120000Z/OTHER",
                "total_bytes": 0,
                "duration": 0.01,
                "streams": [],
                "skipped": [],
            },
        },
    }
    json.dumps(summary)  # what summary.json holds
    assert backup_summary(BACKUP_RESULTS["results"], "x", "s", "f")["accounts"] == summary["accounts"]


def test_an_account_with_nothing_backed_up_counts_zero():
    results = [{"item": "APP", "path": "/p", "changed": False, "skipped_streams": []}]  # a finished backup was there
    assert backup_summary(results, "b", "s", "f")["accounts"]["APP"] == {
        "path": "/p",
        "total_bytes": 0,
        "duration": 0,
        "streams": [],
        "skipped": [],
    }


def test_the_backup_lines_name_each_stream():
    summary = backup_summary(BACKUP_RESULTS, "b", "s", "f")
    assert backup_lines(summary) == [
        "APP/ORDERS: 5000 messages up to sequence 5000, 1000 bytes",
        "APP/EVENTS: 300 messages up to sequence 300, 200 bytes",
    ]


@pytest.mark.parametrize("given", [None, "text", [{"path": "/p"}], [1]])
def test_results_that_are_not_a_looped_task_are_refused(given):
    with pytest.raises(AnsibleFilterError, match="backup_summary"):
        backup_summary(given, "b", "s", "f")


# ------------------------------------------------------------------------------------------------ retention


def sets(*names: str) -> list[str]:
    return [f"{ROOT}/{name}" for name in names]


def summaries(*names: str) -> list[dict]:
    """As ansible.builtin.find returns them."""
    return [{"path": f"{ROOT}/{name}/summary.json", "isdir": False} for name in names]


NAMES = ["20261120T000000Z", "20261121T000000Z", "20261122T000000Z", "20261123T000000Z", "20261124T000000Z"]


def test_retention_keeps_the_last_complete_sets():
    found = [{"path": path} for path in reversed(sets(*NAMES))]  # find's order is no order
    assert backup_retention(found, summaries(*NAMES), 2) == sets(*NAMES[:3])
    assert backup_retention(sets(*NAMES), sets(*NAMES), "2") == sets(*NAMES[:3])  # -e gives strings; dirs work too


def test_retention_deletes_incomplete_sets_older_than_the_oldest_kept_and_never_newer_ones():
    # 21 and 24 never finished: 21 is older than the oldest kept (22), 24 may still be being written.
    complete = summaries(NAMES[0], NAMES[2], NAMES[3])
    assert backup_retention(sets(*NAMES), complete, 2) == sets(NAMES[0], NAMES[1])


@pytest.mark.parametrize("keep", [7, 5])
def test_retention_deletes_nothing_older_than_the_oldest_complete_set_when_keeping_more(keep):
    assert backup_retention(sets(*NAMES), summaries(*NAMES[2:]), keep) == sets(*NAMES[:2])


@pytest.mark.parametrize("keep", [0, "0", 0.0])
def test_keep_zero_keeps_everything(keep):
    assert backup_retention(sets(*NAMES), summaries(*NAMES), keep) == []


def test_no_complete_set_deletes_nothing():
    assert backup_retention(sets(*NAMES), [], 1) == []


def test_retention_never_returns_what_is_not_a_dated_set():
    assert backup_retention([*sets(*NAMES), f"{ROOT}/manual", f"{ROOT}/.safety-backups"], summaries(*NAMES), 1) == sets(
        *NAMES[:4]
    )


@pytest.mark.parametrize("keep", [-1, "-1", "abc", "", None, True, 1.5])
def test_a_keep_that_is_not_a_whole_number_is_refused(keep):
    with pytest.raises(AnsibleFilterError, match="keep must be a whole number"):
        backup_retention(sets(*NAMES), summaries(*NAMES), keep)


# ----------------------------------------------------------------------------------------------- the latest


def test_the_latest_is_the_newest_dated_set_with_a_summary():
    found = summaries(NAMES[3], NAMES[1], "manual", "nested/" + NAMES[0])
    assert backup_latest(found) == f"{ROOT}/{NAMES[3]}"
    assert backup_latest([f"{ROOT}/manual/summary.json"]) == ""
    assert backup_latest([]) == ""


# ------------------------------------------------------------------------------------------- restore report


def restored(stream: str, action: str, messages: int, match: bool = True) -> dict:
    state = {"messages": messages, "first_seq": 1, "last_seq": messages, "consumers": []}
    return {"stream": stream, "action": action, "verification": {"expected": state, "actual": state, "match": match}}


RESTORE_RESULTS = {
    "results": [
        {
            "item": "APP",
            "restored": [restored("ORDERS", "restored", 5000), restored("EVENTS", "replaced", 300)],
            "skipped_streams": ["CACHE"],
        },
        {"item": "OTHER", "restored": [], "skipped_streams": []},
    ]
}
SUMMARY = {"backup": "20261123T120000Z", "started": "2026-11-23T12:00:00Z", "finished": "2026-11-23T12:00:02Z"}


def test_the_restore_report_lists_every_stream_and_the_point_in_time():
    report = restore_report(RESTORE_RESULTS, f"{ROOT}/20261123T120000Z", SUMMARY)
    assert report == {
        "backup": f"{ROOT}/20261123T120000Z",
        "started": "2026-11-23T12:00:00Z",
        "finished": "2026-11-23T12:00:02Z",
        "streams": [
            {
                "account": "APP",
                "stream": "ORDERS",
                "action": "restored",
                "messages": 5000,
                "last_seq": 5000,
                "verified": True,
            },
            {
                "account": "APP",
                "stream": "EVENTS",
                "action": "replaced",
                "messages": 300,
                "last_seq": 300,
                "verified": True,
            },
        ],
        "skipped": [{"account": "APP", "stream": "CACHE"}],
    }
    assert restore_lines(report) == [
        "APP/ORDERS: restored, 5000 messages up to sequence 5000, verified True",
        "APP/EVENTS: replaced, 300 messages up to sequence 300, verified True",
    ]


def test_a_restore_report_needs_the_summary():
    with pytest.raises(AnsibleFilterError, match="summary"):
        restore_report(RESTORE_RESULTS, "/x", "not a summary")


# --------------------------------------------------------------------------------------------------- settings

DEFAULTS = {"group": "nats", "backup_root": "/home/op/.natsops/backups", "backup_keep": 7, "health_timeout": 300}
RENAMED = ["backup_root", "backup_keep", "restore_replicas"]


@pytest.fixture
def deprecations():
    with mock.patch.object(natsops_settings.display, "deprecated") as deprecated:
        yield deprecated


def test_defaults_when_nothing_is_set(deprecations):
    assert settings({}, DEFAULTS, RENAMED) == DEFAULTS
    deprecations.assert_not_called()


def test_the_natsops_names_win(deprecations):
    given = {"natsops_backup_root": "/data", "natsops_group": "prod", "natsops_restore_replicas": 1}
    assert settings(given, DEFAULTS, RENAMED) == {
        **DEFAULTS,
        "backup_root": "/data",
        "group": "prod",
        "restore_replicas": 1,
    }
    deprecations.assert_not_called()


def test_an_old_name_still_works_with_a_deprecation_warning(deprecations):
    result = settings({"backup_root": "/old", "restore_replicas": 3}, DEFAULTS, RENAMED)
    assert result["backup_root"] == "/old"
    assert result["restore_replicas"] == 3
    messages = [call.args[0] for call in deprecations.call_args_list]
    assert len(messages) == 2
    assert "backup_root" in messages[0] and "rename it natsops_backup_root" in messages[0]
    assert "rename it natsops_restore_replicas" in messages[1]
    for call in deprecations.call_args_list:
        assert call.kwargs == {"version": "0.2.0", "collection_name": "natsops.jetstream"}


def test_an_old_name_beside_its_new_name_is_ignored_and_said_so(deprecations):
    result = settings({"backup_keep": 2, "natsops_backup_keep": 3}, DEFAULTS, RENAMED)
    assert result["backup_keep"] == 3
    assert "natsops_backup_keep is set too and wins: remove backup_keep" in deprecations.call_args.args[0]


def test_a_name_that_was_never_public_without_the_prefix_is_not_read(deprecations):
    assert settings({"group": "other", "health_timeout": 5}, DEFAULTS, RENAMED) == DEFAULTS
    deprecations.assert_not_called()


def test_a_play_may_change_a_default_and_the_variables_still_win(deprecations):
    assert settings({}, DEFAULTS, RENAMED, {"health_timeout": 600})["health_timeout"] == 600
    assert settings({"natsops_health_timeout": 30}, DEFAULTS, RENAMED, {"health_timeout": 600})["health_timeout"] == 30


# ------------------------------------------------------------------------------ the playbooks' settings file

DEFAULTS_FILE = REPO_ROOT / "playbooks" / "vars" / "natsops_defaults.yml"


def test_the_settings_file_defines_no_public_variable():
    """vars_files outrank the inventory: a natsops_* (or old) name defined there would hide the user's."""
    variables = yaml.safe_load(DEFAULTS_FILE.read_text())
    assert all(name.startswith("_natsops") for name in variables), sorted(variables)
    renamed = variables["_natsops_renamed"]
    assert len(renamed) == len(set(renamed))
    assert not any(name.startswith("natsops_") for name in [*renamed, *variables["_natsops_defaults"]])


def test_the_filters_render_with_ansible_doc():
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections")}
    names = [f"natsops.jetstream.{name}" for name in [*backup_sets.FilterModule().filters(), "natsops_settings"]]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "filter", "--json", *names],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr[-3000:]
    docs = json.loads(done.stdout)
    assert sorted(docs) == sorted(names)
    for name in names:
        assert docs[name]["doc"]["short_description"] and docs[name]["doc"]["options"]["_input"], name


def test_a_setting_without_a_default_is_read_from_its_natsops_variable_only_when_set() -> None:
    assert settings({"natsops_standby_domain": "west"}, {"backup_keep": 7})["standby_domain"] == "west"
    assert "standby_domain" not in settings({}, {"backup_keep": 7})
