"""Sources and mirrors: the server's index names and hashes, the headers, and the order of a restore."""

from __future__ import annotations

from ansible_collections.natsops.jetstream.plugins.module_utils.recovery.sources import (
    SourcePosition,
    dependencies,
    index_name,
    parse_source_header,
    server_hash,
)


def test_server_hash_is_the_servers():
    # The ident nats-server 2.15.1 wrote for an origin created at that time (read from a sourced message).
    assert server_hash("2026-12-02T08:15:46.850106504Z") == "mzm4k9Wj"


def test_index_names_as_the_server_composes_them():
    assert index_name({"name": "ORIGIN"}) == "ORIGIN > >"
    assert index_name({"name": "ORIGIN", "filter_subject": "origin.a"}) == "ORIGIN origin.a >"
    transforms = [{"src": "origin.>", "dest": "t.>"}, {"src": "other.*", "dest": ""}]
    assert index_name({"name": "ORIGIN", "subject_transforms": transforms}) == "ORIGIN origin.>\fother.* t.>\f>"
    external = index_name({"name": "ORIGIN", "external": {"api": "$JS.hub.API"}})
    assert external == f"ORIGIN:{server_hash('$JS.hub.API')} > >"


def test_source_headers():
    assert parse_source_header("ORIGIN 500 > > origin.a mzm4k9Wj") == ("ORIGIN > >", 500)
    assert parse_source_header("ORIGIN 7 origin.a > origin.a") == ("ORIGIN origin.a >", 7)
    assert parse_source_header("$JS.ACK.ORIGIN.x.1.2.3") is None  # the pre-2.10 form
    assert parse_source_header("ORIGIN seven > > s") is None


def test_origins_come_first_and_cycles_do_not_deadlock():
    backups = {
        "ORIGIN": {"name": "ORIGIN"},
        "MIR": {"name": "MIR", "mirror": {"name": "ORIGIN"}},
        "SRC": {"name": "SRC", "sources": [{"name": "ORIGIN"}, {"name": "MIR"}, {"name": "ELSEWHERE"}]},
        "REMOTE": {"name": "REMOTE", "sources": [{"name": "ORIGIN", "external": {"api": "$JS.hub.API"}}]},
        "A": {"name": "A", "sources": [{"name": "B"}]},
        "B": {"name": "B", "sources": [{"name": "A"}]},
    }
    edges = dependencies(backups)
    assert edges["ORIGIN"] == set() and edges["MIR"] == {"ORIGIN"} and edges["SRC"] == {"ORIGIN", "MIR"}
    assert edges["REMOTE"] == set()  # an origin in another domain is not this restore's
    assert (edges["A"], edges["B"]) == ({"B"}, set()) or (edges["A"], edges["B"]) == (set(), {"A"})


def test_a_source_resumes_one_past_its_position():
    found = SourcePosition({"name": "ORIGIN", "filter_subject": "o.a"}, 500)
    assert found.resumed() == {"name": "ORIGIN", "filter_subject": "o.a", "opt_start_seq": 501}
    assert SourcePosition({"name": "ORIGIN"}, None).resumed() == {"name": "ORIGIN"}
