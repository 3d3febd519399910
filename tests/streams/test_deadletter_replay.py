"""`clinstream deadletter replay` against the running pipeline: a dead letter whose cause is fixed comes out
enriched with its original key and headers, a second run replays nothing, a dead letter whose cause is not
fixed comes back to the dead-letter topic saying it was replayed, and a dry run sends nothing and prints
no patient data."""

import json
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from clinstream.run import settings_env
from streams import topics
from streams.app import now_iso
from tests.streams.test_stages import hl7, msh, pid, vitals

pytestmark = pytest.mark.integration


def replay_cli(settings, *args: str) -> tuple[list[dict], dict]:
    """The command as an operator runs it; returns (one line per dead letter, the summary)."""
    done = subprocess.run([sys.executable, "-m", "clinstream.cli", "deadletter", "replay", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return lines[:-1], lines[-1]


def until(collector, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collector.poll()
        if predicate(collector.outputs):
            return True
    return False


def produce(settings, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()


def records_of(settings, topic: str, message_id: str) -> list:
    """Every record of `topic` whose bytes hold `message_id`."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    found = [r for r in consumer if message_id.encode() in (r.value or b"")]
    consumer.close()
    return found


def test_replay_sends_fixed_dead_letters_once(pipeline, collector):
    inbound = topics.topic_name(topics.INBOUND_HL7V2, pipeline)
    deadletter = topics.topic_name(topics.DEADLETTER, pipeline)
    mrn = f"R{uuid.uuid4().hex[:6]}"
    key = f"TESTHOSP|{mrn}".encode()
    sender = ("x-sender", b"lab-7")

    # 1. the running pipeline dead-letters a malformed message (an ORU without PID); its MSH-10 and headers travel along
    bad = f"BAD{uuid.uuid4().hex[:10]}"
    produce(pipeline, inbound, hl7(msh("ORU^R01^ORU_R01", bad), "OBR|1|||85353-1^Vital signs panel^LN"), key, [sender])
    assert until(collector, lambda o: any(h.get("clinstream.message_id") == bad for _, h in o.deadletter), 120)
    headers = next(h for _, h in collector.outputs.deadletter if h.get("clinstream.message_id") == bad)
    assert headers["clinstream.error"] == "hl7_parse" and headers["x-sender"] == "lab-7"

    # 2. "cause fixed": a valid message on the dead-letter topic, as the normalizer writes one that was over a limit since raised
    good = f"OK{uuid.uuid4().hex[:10]}"
    value = vitals(good, mrn)
    produce(pipeline, deadletter, value, key, [
        sender, ("clinstream.stage", b"normalizer"),
        ("clinstream.reason", f"message is {len(value)} bytes, over the limit of 100 (max_message_bytes)".encode()),
        ("clinstream.error", b"too_large"), ("clinstream.source.topic", inbound.encode()), ("clinstream.source.partition", b"0"),
        ("clinstream.source.offset", b"0"), ("clinstream.failed_at", now_iso().encode()), ("clinstream.message_id", good.encode()),
    ])

    # a dry run lists both, counts them by kind, prints neither key nor bytes, and sends nothing
    listed, summary = replay_cli(pipeline, "--dry-run", "--message-id", good, "--message-id", bad)
    assert summary["dry_run"] and summary["would_replay"] == 2 and summary["by_reason_kind"] == {"hl7_parse": 1, "too_large": 1}
    assert {line["message_id"]: line["reason_kind"] for line in listed} == {good: "too_large", bad: "hl7_parse"}
    assert all(line["to"] == inbound for line in listed)
    assert mrn not in json.dumps([listed, summary]) and "Vital signs" not in json.dumps(listed)
    time.sleep(3)
    assert not records_of(pipeline, inbound, good)

    # the fixed one, by kind and id: it comes out enriched, from a record with the original key and headers
    listed, summary = replay_cli(pipeline, "--reason-kind", "too_large", "--message-id", good)
    assert summary["replayed"] == 1 and [line["message_id"] for line in listed] == [good]
    assert until(collector, lambda o: any(e["message_id"] == good for e in o.enriched), 180), "the replayed message was not enriched"
    (replayed,) = records_of(pipeline, inbound, good)
    assert replayed.key == key and replayed.value == value
    replayed_headers = dict(replayed.headers)
    assert replayed_headers["x-sender"] == b"lab-7"
    assert replayed_headers["clinstream.replayed_from"].decode().startswith(f"{deadletter}/")
    assert not any(k.startswith("clinstream.") and k != "clinstream.replayed_from" for k in replayed_headers)
    assert listed[0]["replayed_to"] == f"{inbound}/{replayed.partition}/{replayed.offset}"

    # a second run replays nothing: the ledger knows it
    listed, summary = replay_cli(pipeline, "--reason-kind", "too_large", "--message-id", good)
    assert (listed, summary["replayed"], summary["already_replayed"]) == ([], 0, 1)

    # the unfixed one goes back and is dead-lettered again, saying which dead letter it was replayed from
    listed, summary = replay_cli(pipeline, "--message-id", bad)
    assert summary["replayed"] == 1
    first = listed[0]["dead_letter"]
    assert until(collector, lambda o: any(h.get("clinstream.replayed_from") == f"{deadletter}/{first}" for _, h in o.deadletter), 120)
    again = next(h for _, h in collector.outputs.deadletter if h.get("clinstream.replayed_from") == f"{deadletter}/{first}")
    assert again["clinstream.message_id"] == bad and again["x-sender"] == "lab-7" and again["clinstream.error"] == "hl7_parse"
    assert sum(1 for e in collector.outputs.enriched if e["message_id"] == good) == 1
