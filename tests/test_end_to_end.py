"""The whole pipeline on the real broker and Redis: a seeded feed with malformed messages goes in;
every valid message is enriched exactly once, every malformed one is dead-lettered with a reason, the
flags each message raises and the alerts (raised, resolved, with their episodes) are those the generator's ground
truth expects, each alert once, and Redis holds the expected state."""

import json
from collections import Counter

import pytest
import redis

from clinstream.run import publish
from clinstream.synthetic import generate

pytestmark = pytest.mark.integration


def test_seeded_feed_end_to_end(pipeline, collector):
    feed = generate(400, seed=21, malformed_share=0.05)
    valid = [m for m in feed.messages if m.valid]
    malformed = [m for m in feed.messages if not m.valid]
    assert malformed and any(m.expected_flags for m in valid)
    publish(pipeline, feed.messages)
    assert collector.wait_for(len(valid), len(malformed), timeout=420), "not every message came out"
    collector.wait_for(10**9, 0, timeout=3)  # keep reading a little: duplicates would show up here
    out = collector.outputs

    enriched = Counter(e["message_id"] for e in out.enriched)
    assert set(enriched) == {m.message_id for m in valid}
    assert max(enriched.values()) == 1, "a message was enriched twice"

    dead = Counter(value for value, _ in out.deadletter)
    assert dead == Counter(m.value for m in malformed)
    for value, headers in out.deadletter:
        assert headers["clinstream.stage"] == "normalizer" and headers["clinstream.reason"]
        assert headers["clinstream.source.offset"].isdigit()

    raised = {e["message_id"]: tuple(sorted(f["name"] for f in e["risk"]["raised"] if f["name"] != "sirs")) for e in out.enriched}
    assert raised == {m.message_id: m.expected_flags for m in valid}
    assert len({a["alert_id"] for a in out.alerts}) == len(out.alerts), "an alert was published twice"
    fired = sorted((a["message_id"], a["kind"], a["flag"], a["episode"]) for a in out.alerts)
    assert fired == sorted((m.message_id, *event) for m in valid for event in m.expected_alerts)
    assert not any(a["shadow"] for a in out.alerts)

    r = redis.Redis.from_url(pipeline.redis, decode_responses=True)
    for patient, state in feed.expected_state.items():
        stored = r.hgetall(f"{pipeline.redis_key_prefix}:risk:{patient}")
        assert stored, f"no risk state for a patient ({len(feed.expected_state)} expected)"
        assert json.loads(stored["flags"]) == state["flags"]
        assert (stored["band"] or None) == state["band"]
        assert (int(stored["score"]) if stored["score"] else None) == state["score"]
        assert r.ttl(f"{pipeline.redis_key_prefix}:risk:{patient}") > 0
