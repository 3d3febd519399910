"""`clinstream deadletter replay`'s pure parts: which dead letters a filter selects, what a replayed record
carries, and what may be printed."""

from datetime import UTC, datetime

import pytest

from clinstream.deadletter import DEAD_LETTER_HEADERS, REPLAYED_FROM, DeadLetter, Filters, parse_time


def dead_letter(kind="too_large", failed_at="2026-01-02T10:00:00.000+00:00", message_id="M-1", extra=()) -> DeadLetter:
    headers = [*extra, ("clinstream.stage", b"normalizer"), ("clinstream.reason", b"message is 12 bytes, over the limit of 10 (max_message_bytes)"),
               ("clinstream.error", kind.encode()), ("clinstream.source.topic", b"clinical.inbound.hl7v2"),
               ("clinstream.source.partition", b"2"), ("clinstream.source.offset", b"41"), ("clinstream.failed_at", failed_at.encode())]
    if message_id:
        headers.append(("clinstream.message_id", message_id.encode()))
    return DeadLetter("clinical.deadletter", 1, 7, b"GENHOSP|1234567", b"MSH|...PID|1||1234567^^^GENHOSP^MR||Doe^Jane", tuple(headers))


def test_no_filter_selects_everything():
    assert Filters().matches(dead_letter()) and Filters().matches(dead_letter(message_id=None))


def test_reason_kind_filter():
    f = Filters(reason_kinds=frozenset({"too_large", "too_many_segments"}))
    assert f.matches(dead_letter("too_large")) and f.matches(dead_letter("too_many_segments"))
    assert not f.matches(dead_letter("hl7_parse"))


def test_time_window_is_since_inclusive_until_exclusive():
    f = Filters(since=parse_time("2026-01-02T10:00:00Z"), until=parse_time("2026-01-02T11:00:00"))
    assert f.matches(dead_letter(failed_at="2026-01-02T10:00:00.000+00:00"))
    assert f.matches(dead_letter(failed_at="2026-01-02T12:59:59+02:00"))  # 10:59:59 UTC
    assert not f.matches(dead_letter(failed_at="2026-01-02T11:00:00.000+00:00"))
    assert not f.matches(dead_letter(failed_at="2026-01-02T09:59:59.999+00:00"))
    assert not f.matches(dead_letter(failed_at="not a time"))  # unknown time: outside any window


def test_message_id_filter_needs_the_header():
    f = Filters(message_ids=frozenset({"M-1"}))
    assert f.matches(dead_letter()) and not f.matches(dead_letter(message_id="M-2")) and not f.matches(dead_letter(message_id=None))


def test_naive_times_are_utc():
    assert parse_time("2026-01-02T10:00") == datetime(2026, 1, 2, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_replayed_record_keeps_the_original_headers_and_says_where_it_came_from():
    dl = dead_letter(extra=[("x-sender", b"lab-7"), (REPLAYED_FROM, b"clinical.deadletter/0/3")])
    headers = dl.replay_headers()
    assert headers == [("x-sender", b"lab-7"), (REPLAYED_FROM, b"clinical.deadletter/1/7")]
    assert not {k for k, _ in headers} & set(DEAD_LETTER_HEADERS)


def test_description_has_no_key_and_no_bytes():
    shown = dead_letter().describe()
    assert shown == {"dead_letter": "1/7", "stage": "normalizer", "reason_kind": "too_large",
                     "reason": "message is 12 bytes, over the limit of 10 (max_message_bytes)", "message_id": "M-1",
                     "to": "clinical.inbound.hl7v2", "source": "clinical.inbound.hl7v2/2/41",
                     "failed_at": "2026-01-02T10:00:00.000+00:00", "bytes": 44}
    assert "1234567" not in str(shown) and "Doe" not in str(shown)
