"""Human durations, sizes and times <-> JetStream's nanoseconds, bytes and RFC 3339."""

from __future__ import annotations

import pytest
from ansible_collections.natsops.jetstream.plugins.module_utils.core.durations import (
    format_duration,
    format_time,
    parse_duration,
    parse_size,
    parse_time,
)
from ansible_collections.natsops.jetstream.plugins.module_utils.core.errors import NatsOpsError

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("given", "nanoseconds"),
    [
        ("1h", 3600 * SECOND),
        ("1h30m", 5400 * SECOND),
        ("500ms", SECOND // 2),
        ("1.5h", 5400 * SECOND),
        ("2d", 2 * 86400 * SECOND),
        ("1w", 7 * 86400 * SECOND),
        ("250us", 250_000),
        ("10ns", 10),
        ("1m30s", 90 * SECOND),
        (" 30s ", 30 * SECOND),
        ("0", 0),
        ("0s", 0),
        (30, 30 * SECOND),
        ("30", 30 * SECOND),
        (0.25, SECOND // 4),
    ],
)
def test_parse_duration(given, nanoseconds):
    assert parse_duration(given) == nanoseconds


@pytest.mark.parametrize("given", ["", "1x", "h", "1h 30m", "-5s", -1, True, None, "1h30", "ms"])
def test_parse_duration_refuses(given):
    with pytest.raises(NatsOpsError, match="max_age"):
        parse_duration(given, "max_age")


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (120 * SECOND, "2m"),
        (5400 * SECOND, "1h30m"),
        (7 * 86400 * SECOND, "168h"),
        (SECOND // 2, "500ms"),
        (SECOND + 5, "1s5ns"),
        (1500, "1us500ns"),
    ],
)
def test_format_duration(nanoseconds, text):
    assert format_duration(nanoseconds) == text
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("given", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("1K", 1024),
        ("1kb", 1024),
        ("512MiB", 512 << 20),
        ("1GB", 1 << 30),
        ("2 G", 2 << 30),
        ("1T", 1 << 40),
        ("10B", 10),
        (-1, -1),
        ("-5", -1),
    ],
)
def test_parse_size(given, size):
    assert parse_size(given) == size


@pytest.mark.parametrize("given", ["1X", "G", "1.5G", True, None, ""])
def test_parse_size_refuses(given):
    with pytest.raises(NatsOpsError, match="max_bytes"):
        parse_size(given, "max_bytes")


def test_times_compare_across_offsets_and_keep_nanoseconds():
    utc = parse_time("2025-01-31T12:00:00Z")
    assert parse_time("2025-01-31T14:00:00+02:00") == utc
    assert parse_time("2025-01-31T12:00:00.000000001Z") == utc + 1
    assert format_time(utc) == "2025-01-31T12:00:00Z"
    assert format_time(utc + 1_500_000) == "2025-01-31T12:00:00.0015Z"
    with pytest.raises(NatsOpsError, match="RFC 3339"):
        parse_time("31/01/2025")
