#!/usr/bin/python
# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: consumer_pause
short_description: Pause or resume durable JetStream consumers
version_added: 0.1.0
description:
  - "Pauses (O(state=paused)) or resumes (O(state=resumed)) the durable consumers of the chosen streams through
    C($JS.API.CONSUMER.PAUSE), as C(nats consumer pause) and C(nats consumer resume) do. A paused consumer delivers
    nothing, redeliveries included, until its pause ends (at O(until)) or it is resumed; its position and its
    pending and unacknowledged messages are kept."
  - "Meant for the time after a restore: M(natsops.jetstream.stream_restore) can leave the consumers it restores
    paused (O(natsops.jetstream.stream_restore#module:pause_consumers)), so that applications get nothing before
    you have checked what came back; this module (or the C(natsops.jetstream.resume_consumers) playbook) resumes
    them."
  - Needs nats-server 2.11 or later (JetStream API level 1). An older server is refused, by its release, before
    anything changes.
  - Ephemeral consumers (KV watchers, ordered consumers) are left out; only durable ones are paused or resumed.
  - "Every consumer is chosen and its state read before any is changed: a stream or consumer named without pattern
    characters that does not exist, or one whose leader does not answer, fails the task with nothing changed."
  - "Idempotent: with a time, a consumer already paused until exactly that time is left as it is; with a duration,
    one already paused at least that long from now is left as it is (a longer pause is not shortened); with
    O(state=resumed), one that is not paused is left as it is."
options:
  streams:
    description:
      - Streams whose consumers are paused or resumed, by name or shell-style pattern (V(ORDERS*)); V(all) (or
        V(*)) for every stream of the account.
      - A name without pattern characters that is not in the account is an error; a pattern that matches no
        stream chooses nothing.
    type: list
    elements: str
    required: true
  consumers:
    description:
      - Durable consumers to pause or resume, by name or shell-style pattern (V(SHIP*)), in every stream chosen
        by O(streams). Leave it out (or give V(*)) for every durable consumer of those streams.
      - A name without pattern characters that is in none of the chosen streams is an error (unless O(streams)
        chose no stream at all).
    type: list
    elements: str
  state:
    description:
      - V(paused) pauses the consumers until O(until); V(resumed) resumes them at once.
    type: str
    choices: [paused, resumed]
    default: paused
  until:
    description:
      - When the pause ends, as an RFC 3339 time (V(2026-12-24T18:00:00Z), any offset) or a duration from now
        (V(2h), V(30m), V(1d); a plain number is seconds). A time in the past is refused.
      - Required with O(state=paused); refused with O(state=resumed).
      - "A time sets exactly that end, shortening a longer pause; a duration only ever lengthens a pause."
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - natsops.jetstream.connection
  - natsops.jetstream.attributes
attributes:
  check_mode:
    support: full
    details: Reports each consumer's pause state and what would change, and changes nothing.
  diff_mode:
    support: full
    details: Each chosen consumer's pause state (C(paused), C(pause_until)) before and after, by stream.
  idempotent:
    description: Whether running the task again with the same options changes nothing.
    support: full
    details: With a duration, only as long as the pause it set lasts at least that long from the new run.
seealso:
  - module: natsops.jetstream.stream_restore
  - module: natsops.jetstream.consumer
  - name: Pausing consumers
    description: The NATS documentation on consumer configuration, C(pause_until) among it.
    link: https://docs.nats.io/nats-concepts/jetstream/consumers
author:
  - natsops.jetstream contributors (@natsops)
"""

EXAMPLES = r"""
- name: Hold back every consumer of ORDERS for two hours while the applications are checked
  natsops.jetstream.consumer_pause:
    context: prod-orders
    streams: [ORDERS]
    until: 2h
  delegate_to: localhost
  run_once: true

- name: Pause the shipping consumers of every stream until a fixed time
  natsops.jetstream.consumer_pause:
    streams: [all]
    consumers: ["SHIP*"]
    until: "2026-12-24T18:00:00Z"
  delegate_to: localhost
  run_once: true

- name: Resume every durable consumer of the account after a restore has been checked
  natsops.jetstream.consumer_pause:
    streams: [all]
    state: resumed
  delegate_to: localhost
  run_once: true
  register: resumed
"""

RETURN = r"""
consumers:
  description:
    - Every durable consumer chosen, by stream and then name, with its pause state before and after (in check mode,
      what it would be after).
  returned: always
  type: list
  elements: dict
  contains:
    stream:
      description: The consumer's stream.
      type: str
    consumer:
      description: The consumer's durable name.
      type: str
    before:
      description: Its pause state before; C(pause_until) is V(null) when it is not paused.
      type: dict
      sample: {paused: false, pause_until: null}
    after:
      description: Its pause state after, as the server reported it when it changed.
      type: dict
      sample: {paused: true, pause_until: "2026-12-24T18:00:00Z"}
    changed:
      description: Whether it was (or, in check mode, would be) paused or resumed.
      type: bool
  sample:
    - stream: ORDERS
      consumer: SHIPPING
      before: {paused: true, pause_until: "2026-12-24T18:00:00Z"}
      after: {paused: false, pause_until: null}
      changed: true
msg:
  description: What was (or would be) done, naming the consumers that changed.
  returned: always
  type: str
  sample: "resumed 1 consumer: ORDERS/SHIPPING; 2 were not paused"
diff:
  description: The chosen consumers' pause state before and after, by stream and then consumer.
  returned: with C(--diff)
  type: dict
"""

from fnmatch import fnmatchcase
from functools import partial
from typing import Any

from ansible_collections.natsops.jetstream.plugins.module_utils.core.connection import (
    NatsModule,
    describe_release,
    nats_argument_spec,
    resolve_options,
    run_procedure,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import parse_time
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError
from ansible_collections.natsops.jetstream.plugins.module_utils.core.input_checks import check_name, check_selection
from ansible_collections.natsops.jetstream.plugins.module_utils.core.jsapi import (
    CONSUMER_NOT_FOUND,
    STREAM_NOT_FOUND,
    JetStreamApi,
    JetStreamApiError,
    is_durable,
    jetstream_session,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.selection import choose_streams
from ansible_collections.natsops.jetstream.plugins.module_utils.settings.pausing import (
    PAUSE_API_LEVEL,
    PAUSE_RELEASE,
    PauseUntil,
    parse_until,
    pause_state,
    set_pause,
)

PATTERN_CHARS = set("*?[")
GONE = (STREAM_NOT_FOUND, CONSUMER_NOT_FOUND)  # deleted while the task ran
NOT_PAUSED = {"paused": False, "pause_until": None}
RELEASE = ".".join(map(str, PAUSE_RELEASE[:2]))


def wanted_until(state: str, value: str | None) -> PauseUntil | None:
    """When the pause should end (None: resume), refusing what would pause nothing."""
    if state == "resumed":
        if value is not None:
            raise NatsOpsError(f"until ({value}) is only for state: paused; leave it out to resume the consumers")
        return None
    if value is None:
        raise NatsOpsError(
            "state: paused needs until, when the pause ends: a time (2026-12-24T18:00:00Z) or a duration from now (2h)"
        )
    return parse_until(value, "until")


def check_consumer_selection(patterns: list[str] | None) -> None:
    """Like check_selection for streams: an explicitly empty selection is refused, names are checked as consumers'."""
    if patterns is None:
        return
    if not patterns or any(not isinstance(pattern, str) or not pattern.strip() for pattern in patterns):
        raise NatsOpsError(
            f"consumers is {patterns!r}: it names no consumer. Name consumers or patterns, or leave it out for every "
            "durable consumer of the streams"
        )
    for pattern in patterns:
        if not PATTERN_CHARS & set(pattern):
            check_name(pattern, kind="consumer", where="in consumers")


async def require_pause_support(api: JetStreamApi, client: Any) -> None:
    level = await api.api_level()
    if level < PAUSE_API_LEVEL:
        raise NatsOpsError(
            f"pausing and resuming consumers needs nats-server {RELEASE} or later (JetStream API level "
            f"{PAUSE_API_LEVEL}); {describe_release(client)} (API level {level}), which cannot pause consumers, "
            "so none of its consumers is paused either. Nothing was changed. Upgrade the servers first "
            "(natsops.jetstream.rolling_restart with rolling_upgrade_version)",
            api_level=level,
        )


def matches(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatchcase(name, pattern) for pattern in patterns)


async def chosen_consumers(
    api: JetStreamApi, stream_patterns: list[str], consumer_patterns: list[str] | None
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(stream, info) of every durable consumer chosen, in stream and name order, and warnings.

    Everything is read before anything changes, so that a wrong name or a leaderless consumer fails the task
    with nothing paused or resumed.
    """
    infos, leaderless_streams = await api.stream_list()
    names = [info["config"]["name"] for info in infos]
    streams = choose_streams(names + leaderless_streams, stream_patterns, "this account")
    leaderless = [f"stream {stream}" for stream in streams if stream in leaderless_streams]
    chosen: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    warnings: list[str] = []
    for stream in (stream for stream in streams if stream not in leaderless_streams):
        try:
            consumers, missing = await api.consumer_list(stream)
        except JetStreamApiError as exc:
            if exc.err_code != STREAM_NOT_FOUND:
                raise
            warnings.append(f"stream {stream} was deleted while this task ran: it has no consumers to pause or resume")
            continue
        durable = sorted((info for info in consumers if is_durable(info)), key=lambda info: info["name"])
        seen.update(info["name"] for info in durable)
        seen.update(missing)
        chosen += [(stream, info) for info in durable if matches(info["name"], consumer_patterns)]
        leaderless += [f"consumer {stream}/{name}" for name in sorted(missing) if matches(name, consumer_patterns)]
    if leaderless:
        raise NatsOpsError(
            f"no leader answered for {', '.join(leaderless)}: their servers are down or electing one, and a consumer "
            "without a leader cannot be paused or resumed. Nothing was changed. Run again once "
            "natsops.jetstream.cluster_info with wait_for: healthy succeeds",
            leaderless=leaderless,
        )
    unknown = [name for name in consumer_patterns or [] if not PATTERN_CHARS & set(name) and name not in seen]
    if unknown and streams:
        raise NatsOpsError(
            f"no durable consumer named {', '.join(unknown)} in stream(s) {', '.join(streams)}: check the names "
            "(ephemeral consumers are never paused or resumed here). Nothing was changed",
            missing=unknown,
        )
    return chosen, warnings


def paused_as_wanted(before: dict[str, Any], until: PauseUntil) -> bool:
    """Paused until exactly the time given, or, for a duration, at least that long from now."""
    if not before["paused"]:
        return False
    try:
        current = parse_time(before["pause_until"], "pause_until")
    except NatsOpsError:  # a time the server wrote in a form we do not read: set it again
        return False
    return current >= until.epoch_ns if until.relative else current == until.epoch_ns


def planned(stream: str, info: dict[str, Any], until: PauseUntil | None) -> dict[str, Any]:
    """One consumer's entry of the result: its state now and the one wanted (what check mode reports)."""
    before = pause_state(info)
    if until is None:
        changed = before["paused"]
        after = dict(NOT_PAUSED)
    else:
        changed = not paused_as_wanted(before, until)
        after = {"paused": True, "pause_until": until.text}
    return {
        "stream": stream,
        "consumer": info["name"],
        "before": before,
        "after": after if changed else before,
        "changed": changed,
    }


async def carry_out(api: JetStreamApi, entries: list[dict[str, Any]], until: PauseUntil | None) -> list[str]:
    """Pause or resume each consumer that needs it; the warnings (consumers deleted meanwhile, left out)."""
    warnings: list[str] = []
    done: list[dict[str, Any]] = []
    for entry in [entry for entry in entries if entry["changed"]]:
        label = f"{entry['stream']}/{entry['consumer']}"
        try:
            entry["after"] = await set_pause(api, entry["stream"], entry["consumer"], until)
        except NatsOpsError as exc:
            if isinstance(exc, JetStreamApiError) and exc.err_code in GONE:
                warnings.append(f"consumer {label} was deleted while this task ran: left out")
                entries.remove(entry)
                continue
            verb = "resuming" if until is None else "pausing"
            finished = ", ".join(f"{item['stream']}/{item['consumer']}" for item in done) or "none"
            raise NatsOpsError(
                f"{verb} {label} failed: {exc.msg}. Already done: {finished}. Run the task again to finish: "
                "the consumers already as wanted are left as they are",
                consumers=done,
            ) from None
        done.append(entry)
    return warnings


def summary(entries: list[dict[str, Any]], until: PauseUntil | None, check_mode: bool) -> str:
    changed = [f"{entry['stream']}/{entry['consumer']}" for entry in entries if entry["changed"]]
    kept = len(entries) - len(changed)
    verb = "resume" if until is None else "pause"
    done = f"would {verb}" if check_mode else f"{verb}d"
    count = f"{len(changed)} consumer{'' if len(changed) == 1 else 's'}"
    text = (
        f"{done} {count}"
        + ("" if until is None else f" until {until.text}")
        + (": " + ", ".join(changed) if changed else "")
    )
    if kept:
        were = "was" if kept == 1 else "were"
        text += f"; {kept} {were} " + ("not paused" if until is None else "already paused as asked")
    return text


def diff_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    before: dict[str, dict[str, Any]] = {}
    after: dict[str, dict[str, Any]] = {}
    for entry in entries:
        before.setdefault(entry["stream"], {})[entry["consumer"]] = entry["before"]
        after.setdefault(entry["stream"], {})[entry["consumer"]] = entry["after"]
    return {"before": before, "after": after}


async def pause_or_resume(params: dict[str, Any], check_mode: bool, diff_mode: bool) -> dict[str, Any]:
    options = resolve_options(params)
    until = wanted_until(params["state"], params["until"])
    check_selection("streams", params["streams"])
    check_consumer_selection(params["consumers"])
    async with jetstream_session(options) as (connection, api):
        await require_pause_support(api, connection.client)
        chosen, warnings = await chosen_consumers(api, params["streams"], params["consumers"])
        entries = [planned(stream, info, until) for stream, info in chosen]
        if not check_mode:
            warnings += await carry_out(api, entries, until)
    result = {
        "changed": any(entry["changed"] for entry in entries),
        "consumers": entries,
        "msg": summary(entries, until, check_mode),
        "warnings": warnings,
    }
    if diff_mode:
        result["diff"] = diff_of(entries)
    return result


def main() -> None:
    module = NatsModule(
        argument_spec=nats_argument_spec(
            streams={"type": "list", "elements": "str", "required": True},
            consumers={"type": "list", "elements": "str"},
            state={"type": "str", "choices": ["paused", "resumed"], "default": "paused"},
            until={"type": "str"},
        ),
        supports_check_mode=True,
    )
    run_procedure(module, partial(pause_or_resume, diff_mode=module._diff))


if __name__ == "__main__":
    main()
