# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to natsops.jetstream: not an interface for other collections; it may change in any release.
"""Streams that mirror or source others: the order to restore them in, and sources that resume exactly.

A sourcing stream records how far it has copied each source in the ``Nats-Stream-Source`` header of
the messages it copied: ``<origin> <origin seq> <filter> <destination> <subject> [<ident>]``, where
origin, filter and destination make up the source's index name and the ident is a hash of the origin
stream's creation time. From nats-server 2.15 on, a source whose origin answers with another ident
takes the origin for a new stream and copies it again from its start. A restored origin always has a
new creation time (a V2 archive does not carry it, nor does the restore request), so after an account
restore every source would replay its origin whole.

So a sourcing stream is restored without its sources; its positions are then read back from the
restored messages, and its sources are put back with ``opt_start_seq`` one past each position, which
the server honours when it resets a source. The ``opt_start_seq`` stays: removed before the source has
copied a message from the new origin, a restart would replay it again.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import NO_MESSAGE_FOUND, JetStreamApiError

SOURCE_HEADER = "Nats-Stream-Source"
# The first release that takes a source's origin, by its creation time, for a new stream (and replays it).
SOURCE_IDENTITY = (2, 15, 0)
# How many messages, newest first, are read to find each source's position before giving up.
SCAN_LIMIT = 10_000
_HASH_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
WILDCARD = ">"


def server_hash(text: str) -> str:
    """nats-server's getHash: the first 8 bytes of SHA-256, each as a base-62 digit."""
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_HASH_DIGITS[byte % 62] for byte in digest[:8])


def index_name(source: dict[str, Any]) -> str:
    """The index name nats-server gives a source (StreamSource.composeIName): origin, filter, destination."""
    name = str(source.get("name") or "")
    external = source.get("external") or {}
    if external.get("api"):
        name += ":" + server_hash(str(external["api"]))
    consumer = source.get("consumer") or {}
    if consumer.get("name"):
        name += ":C=" + server_hash(str(consumer["name"]))
    transforms = source.get("subject_transforms") or []
    if transforms:
        filter_subject = "\f".join(str(item.get("src") or WILDCARD) for item in transforms)
        destination = "\f".join(str(item.get("dest") or WILDCARD) for item in transforms)
    else:
        filter_subject = str(source.get("filter_subject") or WILDCARD)
        destination = WILDCARD
    return f"{name} {filter_subject} {destination}"


def parse_source_header(value: str) -> tuple[str, int] | None:
    """(index name, origin sequence) of a 2.10+ ``Nats-Stream-Source`` header; None for another form."""
    fields = value.split(" ")
    if len(fields) < 4:
        return None
    try:
        sequence = int(fields[1])
    except ValueError:
        return None
    return f"{fields[0]} {fields[2]} {fields[3]}", sequence


def dependencies(backups: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """For each stream, the streams among ``backups`` (by name: config) it mirrors or sources.

    An origin in another domain (``external``) is not one of them. Cycles are broken (the edge that
    closes one is dropped), so that waiting on origins always ends.
    """
    edges: dict[str, set[str]] = {}
    for name, config in backups.items():
        origins = [config.get("mirror")] if config.get("mirror") else list(config.get("sources") or [])
        edges[name] = {
            str(origin["name"])
            for origin in origins
            if origin.get("name") in backups and origin.get("name") != name and not origin.get("external")
        }
    kept: dict[str, set[str]] = {name: set() for name in edges}
    state: dict[str, str] = {}  # visiting, done

    def visit(name: str) -> None:
        state[name] = "visiting"
        for origin in sorted(edges[name]):
            if state.get(origin) == "visiting":
                continue  # closes a cycle
            kept[name].add(origin)
            if origin not in state:
                visit(origin)
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name)
    return kept


@dataclass
class SourcePosition:
    source: dict[str, Any]  # as configured
    position: int | None  # the last origin sequence the stream holds a copy of; None: none found
    capped_from: int | None = None  # the position found, when the restored origin ends before it
    origin_found: bool | None = None  # whether the origin exists in the target account; None: another domain

    @property
    def name(self) -> str:
        return str(self.source.get("name"))

    def resumed(self) -> dict[str, Any]:
        """The source as it is put back: resuming one past its position."""
        if self.position is None:
            return dict(self.source)
        return {**self.source, "opt_start_seq": self.position + 1}

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "index_name": index_name(self.source),
            "position": self.position,
            "opt_start_seq": self.position + 1 if self.position is not None else self.source.get("opt_start_seq"),
        }
        if self.capped_from is not None:
            entry["capped_from"] = self.capped_from
        entry["origin_found"] = self.origin_found
        if self.source.get("external"):
            entry["external_api"] = (self.source.get("external") or {}).get("api")
        return entry


async def source_positions(api: Any, stream: str, sources: list[dict[str, Any]], last_seq: int) -> list[SourcePosition]:
    """Each source's position, read from the stream's newest messages back (at most SCAN_LIMIT of them)."""
    wanted = {index_name(source): source for source in sources}
    found: dict[str, int] = {}
    sequence = last_seq
    first = max(1, last_seq - SCAN_LIMIT + 1)
    while sequence >= first and len(found) < len(wanted):
        headers = await _headers_at(api, stream, sequence)
        parsed = parse_source_header(headers.get(SOURCE_HEADER, "")) if headers is not None else None
        if parsed and parsed[0] in wanted and parsed[0] not in found:
            found[parsed[0]] = parsed[1]
        sequence -= 1
    return [SourcePosition(source, found.get(name)) for name, source in wanted.items()]


async def _headers_at(api: Any, stream: str, sequence: int) -> dict[str, str] | None:
    """The headers of the message at ``sequence``; None when there is none (deleted)."""
    try:
        reply = await api.request(f"STREAM.MSG.GET.{stream}", {"seq": sequence})
    except JetStreamApiError as exc:
        if exc.err_code == NO_MESSAGE_FOUND:
            return None
        raise
    encoded = (reply.get("message") or {}).get("hdrs")
    if not encoded:
        return {}
    return _parse_headers(base64.b64decode(encoded))


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        key, separator, value = line.partition(":")
        if separator:
            headers[key.strip()] = value.strip()
    return headers


async def cap_at_origins(api: Any, positions: list[SourcePosition]) -> None:
    """A position past the end of its origin as restored (the two were backed up at different moments)
    is brought back to that end, so that the origin's next messages, which reuse those sequences, are
    copied rather than skipped."""
    for entry in positions:
        if entry.source.get("external"):
            continue  # in another domain or account: not this connection's to read
        origin = await api.stream_info(entry.name)
        entry.origin_found = origin is not None
        if origin is None or entry.position is None:
            continue
        last = int((origin.get("state") or {}).get("last_seq") or 0)
        if entry.position > last:
            entry.capped_from, entry.position = entry.position, last


def source_warnings(stream: str, sources: list[dict[str, Any]]) -> list[str]:
    """What did not carry over exactly, from a restored stream's ``sources`` entries (SourcePosition.as_dict)."""
    warnings = []
    for entry in sources:
        name, position = entry["name"], entry["position"]
        if position is None:
            warnings.append(
                f"{stream}: no message copied from source {name} was found in its newest {SCAN_LIMIT} messages; the "
                "source starts where its configuration says (its origin's beginning unless opt_start_seq is set)"
            )
        if entry.get("external_api"):
            warnings.append(
                f"{stream}: source {name} is reached through {entry['external_api']} (another domain or account), "
                f"which this restore cannot read: it resumes after sequence {position}; if that origin is not the "
                "stream it copied from (restored or recreated since), check what the stream holds"
            )
        elif entry.get("origin_found") is False:
            warnings.append(
                f"{stream}: its source {name} does not exist here; the stream copies it once it does"
                + (f", from sequence {position + 1}" if position is not None else "")
                + " (restore it too, or remove the source)"
            )
        elif entry.get("capped_from") is not None:
            warnings.append(
                f"{stream}: it had copied source {name} up to sequence {entry['capped_from']}, but {name} as restored "
                f"ends at {position} (the two were backed up at different moments); it resumes after {position}, "
                "and keeps its copies of the messages the restored origin lacks"
            )
    return warnings
