"""Mirrors and sources after an account restore: origins first, and every source resumes exactly.

From nats-server 2.15 a source takes a restored origin (which gets a new creation time) for a new stream
and copies it again from its start: a stream sourcing a 500-message origin ended with 1010 messages after
10 new ones, with the nats CLI's account restore and, before this, with ours.
"""

from __future__ import annotations

from support.hostile import app, js
from support.modules import run_module
from support.streams import wait_for_counts


def test_sources_and_mirrors_resume_exactly_after_an_account_restore(
    nats_standalone, fresh_standalone, tmp_path, unique_name
):
    p = unique_name("SM")
    origin, origin2 = f"{p}_ORIGIN", f"{p}_ORIGIN2"
    source = js(nats_standalone)
    source.create_stream(origin, subjects=[f"{p}.o.>"])
    source.create_stream(origin2, subjects=[f"{p}.p.>"])
    source.publish(f"{p}.o.a", 250)
    source.publish(f"{p}.o.b", 250)
    source.publish(f"{p}.p.x", 100)
    source.create_stream(f"{p}_SRC", subjects=[], sources=[{"name": origin}])
    source.create_stream(f"{p}_SRCF", subjects=[], sources=[{"name": origin, "filter_subject": f"{p}.o.a"}])
    transform = [{"src": f"{p}.o.>", "dest": f"{p}.t.>"}]
    source.create_stream(f"{p}_SRCT", subjects=[], sources=[{"name": origin, "subject_transforms": transform}])
    source.create_stream(f"{p}_SRC2", subjects=[], sources=[{"name": origin}, {"name": origin2}])
    source.create_stream(f"{p}_MIR", subjects=[], mirror={"name": origin})
    expected = {
        f"{p}_SRC": 500, f"{p}_SRCF": 250, f"{p}_SRCT": 500, f"{p}_SRC2": 600, f"{p}_MIR": 500,
    }  # fmt: skip
    assert wait_for_counts(source, expected, settle=0) == expected
    path = tmp_path / "account"
    run_module("stream_backup", app(nats_standalone, streams=[f"{p}_*"], path=str(path)))

    # The mirror comes first in name order: the origins must be restored first all the same.
    restored = run_module("stream_restore", app(fresh_standalone, path=str(path)))
    by_name = {entry["stream"]: entry for entry in restored["restored"]}
    assert by_name[f"{p}_SRC"]["sources"][0]["position"] == 500
    assert by_name[f"{p}_SRC"]["sources"][0]["opt_start_seq"] == 501
    assert by_name[f"{p}_SRCF"]["sources"][0]["position"] == 250  # the last o.a message is origin seq 250
    positions = {entry["name"]: entry["position"] for entry in by_name[f"{p}_SRC2"]["sources"]}
    assert positions == {origin: 500, origin2: 100}
    assert restored["warnings"] == []

    target = js(fresh_standalone)
    target.publish(f"{p}.o.a", 10)
    target.publish(f"{p}.p.x", 10)
    after = {f"{p}_SRC": 510, f"{p}_SRCF": 260, f"{p}_SRCT": 510, f"{p}_SRC2": 620, f"{p}_MIR": 510}
    assert wait_for_counts(target, after) == after

    # The positions stay put across a restart: the sources do not replay then either.
    fresh_standalone.restart()
    target.publish(f"{p}.o.b", 10)
    again = {f"{p}_SRC": 520, f"{p}_SRCF": 260, f"{p}_SRCT": 520, f"{p}_SRC2": 630, f"{p}_MIR": 520}
    assert wait_for_counts(target, again) == again


def test_a_source_whose_origin_is_not_restored_is_named(nats_standalone, fresh_standalone, tmp_path, unique_name):
    p = unique_name("SMX")
    source = js(nats_standalone)
    source.create_stream(f"{p}_ORIGIN", subjects=[f"{p}.o.>"])
    source.publish(f"{p}.o.a", 20)
    source.create_stream(f"{p}_SRC", subjects=[], sources=[{"name": f"{p}_ORIGIN"}])
    wait_for_counts(source, {f"{p}_SRC": 20}, settle=0)
    path = tmp_path / "src"
    run_module("stream_backup", app(nats_standalone, stream=f"{p}_SRC", path=str(path)))

    restored = run_module("stream_restore", app(fresh_standalone, path=str(path)))
    entry = restored["restored"][0]["sources"][0]
    assert (entry["position"], entry["opt_start_seq"], entry["origin_found"]) == (20, 21, False)
    assert any(f"its source {p}_ORIGIN does not exist here" in warning for warning in restored["warnings"])
    config = js(fresh_standalone).stream_info(f"{p}_SRC")["config"]
    assert config["sources"][0]["opt_start_seq"] == 21 and not config.get("subjects")
