"""The deterioration scenarios on the real pipeline: sepsis, respiratory failure, hyperkalaemia, a note that
denies chest pain, a stable patient. Exactly the hand-written alerts fire, once each, in order per patient;
repeats are suppressed; the board ranks the patients as their final state says."""

import json
from collections import defaultdict

import pytest
import redis

from clinstream.run import publish
from clinstream.synthetic import scenarios

pytestmark = pytest.mark.integration


def test_scenarios_fire_exactly_the_expected_alerts(pipeline, collector):
    feed = scenarios()
    publish(pipeline, feed.messages)
    assert collector.wait_for(len(feed.messages), 0, timeout=300), "not every message came out"
    collector.wait_for(10**9, 0, timeout=3)  # keep reading a little: duplicates would show up here
    out = collector.outputs
    enriched = {e["message_id"]: e for e in out.enriched}
    scenario_of = {m.key: m.scenario for m in feed.messages}

    expected, fired = defaultdict(list), defaultdict(list)
    for m in feed.messages:  # publish order is time order per patient
        expected[m.scenario] += [(m.message_id, *event) for event in m.expected_alerts]
        raised = tuple(sorted(f["name"] for f in enriched[m.message_id]["risk"]["raised"] if f["name"] != "sirs"))
        assert raised == m.expected_flags, (m.scenario, m.kind, enriched[m.message_id]["risk"]["raised"])
    order = {m.message_id: i for i, m in enumerate(feed.messages)}
    for a in sorted(out.alerts, key=lambda a: (order[a["message_id"]], a["kind"], a["flag"])):
        fired[scenario_of[a["patient_key"]]].append((a["message_id"], a["kind"], a["flag"], a["episode"]))
    assert dict(fired) == {k: v for k, v in expected.items() if v}
    assert len({a["alert_id"] for a in out.alerts}) == len(out.alerts), "an alert fired twice"
    assert not fired["denies_chest_pain"] and not fired["stable"]

    suppressed = [f for e in out.enriched for f in e["risk"]["suppressed"] if f != "sirs"]
    assert sorted(suppressed) == ["critical_potassium", "news2_high", "qsofa"]
    for a in out.alerts:  # every alert explains itself
        assert a["evidence"] and a["resources"] and a["patient_key"]
    sepsis_high = next(a for a in out.alerts if a["flag"] == "news2_high" and scenario_of[a["patient_key"]] == "sepsis")
    assert sepsis_high["score"] == 17 and sepsis_high["missing"] == [] and any(e.startswith("consciousness=V") for e in sepsis_high["evidence"])

    r = redis.Redis.from_url(pipeline.redis, decode_responses=True)
    p = pipeline.redis_key_prefix
    ranked = [k for k in r.zrevrange(f"{p}:board", 0, -1) if k in scenario_of]
    assert [scenario_of[k] for k in ranked[:3]] == ["sepsis", "hyperkalaemia", "respiratory_failure"]
    for key, state in feed.expected_state.items():
        stored = r.hgetall(f"{p}:risk:{key}")
        assert (stored["band"], int(stored["score"])) == (state["band"], state["score"])
    sepsis = json.loads(r.hget(f"{p}:risk:{ranked[0]}", "summary"))
    assert sepsis["flags"] == ["critical_lactate", "news2_high", "qsofa", "sepsis"] and set(sepsis["evidence"]) == set(sepsis["flags"])
    streamed = [json.loads(e["alert"]) for _, e in r.xrange(f"{p}:alerts")]
    assert sorted(a["alert_id"] for a in streamed if a["patient_key"] in scenario_of) == sorted(a["alert_id"] for a in out.alerts)
