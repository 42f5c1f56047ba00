"""The topic contract: asyncapi.yaml, streamseg/schemas/ and the code agree.

``scripts/check-contract`` validates asyncapi.yaml with the official AsyncAPI
parser (npm); these tests check what a parser cannot know: that the document
names the topics, partitions and configurations the worker really creates, that
every referenced schema exists, that every feature is documented, and that
every record the engine emits (changes, suppression notices, current segments,
lookup answers, redacted dead letters) validates against its schema.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from unit.ingest_harness import schema_errors

from streamseg import codec
from streamseg.app import topic_specs
from streamseg.config import DAY, INTERNAL_TOPICS, Settings
from streamseg.engine.deadletters import dead_letter
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.lookup import customer_answer, merge_sizes, segment_sizes
from streamseg.engine.processor import Engine
from streamseg.engine.summary import FEATURES
from streamseg.engine.validate import Invalid, Validator, pseudonymise
from streamseg.lookupstate import table_key
from streamseg.replay import Replayer, replay_lines
from streamseg.web import bad_scope

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())


def channels_by_address(app_id: str) -> dict[str, dict[str, Any]]:
    return {ch["address"].replace("{appId}", app_id): ch for ch in DOC["channels"].values()}


def test_asyncapi_describes_every_topic_the_worker_creates() -> None:
    settings = Settings()
    channels = channels_by_address(settings.app_id)
    # the tables' changelogs are among the specs (created before Faust starts)
    assert set(channels) == {spec.name for spec in topic_specs(settings)}
    for spec in topic_specs(settings):
        binding = channels[spec.name]["bindings"]["kafka"]
        assert binding["partitions"] == spec.num_partitions, spec.name
        configs = binding.get("topicConfiguration", {})
        wanted = dict(spec.topic_configs or {})
        if "cleanup.policy" in wanted:
            assert configs["cleanup.policy"] == [wanted.pop("cleanup.policy")], spec.name
        if "retention.ms" in wanted:
            assert str(configs["retention.ms"]) == wanted.pop("retention.ms"), spec.name
        assert wanted == {}, spec.name
        assert "x-partitioning" in channels[spec.name], spec.name
    assert "dedupe by change_id" in channels[settings.topic_changes]["x-delivery"]


def test_asyncapi_promises_at_least_once_only() -> None:
    """``exactly_once`` is refused by the settings (docs/RELIABILITY.md): no transactions."""
    text = (ROOT / "asyncapi.yaml").read_text()
    assert "read_committed" not in text and "written in Kafka" not in text
    assert "exactly-once with" not in text and "`exactly_once` is refused" in text
    delivery = channels_by_address(Settings().app_id)[Settings().topic_changes]["x-delivery"]
    assert delivery.startswith("at-least-once (the only guarantee")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_schema_reference_resolves() -> None:
    external = [r for r in _refs(DOC) if not r.startswith("#")]
    assert external, "asyncapi.yaml references no schema file"
    for ref in external:
        path, _, pointer = ref.partition("#")
        target: Any = json.loads((ROOT / path).read_text())
        for part in filter(None, pointer.split("/")):
            target = target[part]
        assert isinstance(target, dict), ref
    used = {Path(r.partition("#")[0]).name for r in external}
    topic_schemas = {p.name for p in (ROOT / "streamseg" / "schemas").glob("*.schema.json")
                     # lookup-* are HTTP answers, audiences.schema.json a config file
                     if not p.name.startswith("lookup-") and p.name != "audiences.schema.json"}
    assert used == topic_schemas


def test_internal_topics_carry_the_app_id_outputs_stay_configurable() -> None:
    a, b = Settings(app_id="shop-a"), Settings(app_id="shop-b")
    internal = list(INTERNAL_TOPICS)
    assert {getattr(a, n) for n in internal}.isdisjoint({getattr(b, n) for n in internal})
    assert all(getattr(a, n).startswith("shop-a-") for n in internal)
    assert (a.topic_changes, a.topic_segments) == (b.topic_changes, b.topic_segments)
    custom = Settings.from_env({"STREAMSEG_APP_ID": "x", "STREAMSEG_TOPIC_CHANGES": "x-changes",
                                "STREAMSEG_TOPIC_TICKS": "t"})
    assert (custom.topic_changes, custom.topic_ticks, custom.topic_models) == (
        "x-changes", "t", "x-models")


def test_every_feature_is_documented_with_unit_in_schema_and_readme() -> None:
    schema = json.loads((ROOT / "streamseg/schemas/segment-change.schema.json").read_text())
    props = schema["$defs"]["features"]["properties"]
    assert set(props) == set(FEATURES) == set(schema["$defs"]["features"]["required"])
    readme = (ROOT / "README.md").read_text()
    for name, (unit, _) in FEATURES.items():
        assert props[name]["x-unit"] == unit and unit in props[name]["description"]
        assert f"`{name}`" in readme, f"feature {name} missing from README"
    lookup = json.loads((ROOT / "streamseg/schemas/lookup-customer.schema.json").read_text())
    for name in ("features", "segment", "segments"):
        assert lookup["$defs"][name] == schema["$defs"][name]


def story(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]], CustomerState]:
    """Purchases, a clock move, a withdrawal, a re-grant: (changes, segments records, state)."""
    changes: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    state: CustomerState | None = None

    def take(out: Any) -> None:
        nonlocal state
        state = out.state
        changes.extend(out.changes + out.notices)
        if out.segments is not None:
            segments.append(out.segments)

    for n, day in enumerate([0, 3, 6, 9, 12]):
        take(engine.apply(state, Event("purchase", "purchase", f"p{n}", "c1", day * DAY,
                                       amount=30.0, channel="web", device="mobile")))
    assert state is not None
    take(engine.tick(state, 300 * DAY))
    take(engine.apply(state, Event("consent", "consent_withdrawn", "w1", "c1", 301 * DAY)))
    take(engine.apply(state, Event("consent", "consent_granted", "g1", "c1", 302 * DAY)))
    assert state is not None
    return changes, segments, state


def test_every_emitted_record_matches_its_schema() -> None:
    engine = Engine(Settings(min_dwell_s=0.0, base_currency="USD", fx_rates="USD=1,EUR=1.1"))
    changes, segments, state = story(engine)
    kinds = [c["kind"] for c in changes]
    assert kinds.count("suppression") == 2 and kinds[-2:] == ["suppression", "suppression"]
    for record in changes:
        assert schema_errors("segment-change", record) == [], record
    for record in segments:
        assert schema_errors("customer-segments", record) == [], record
    moved = [c for c in changes if c["kind"] == "change" and c["from_segment"] is not None]
    assert moved
    names = {seg.name: seg for seg in engine.segmenters}
    for c in moved:
        assert c["from_name"] == names[c["segmenter"]].describe(c["from_segment"])
        assert c["features"]["currency"] == "USD"
    off, on = changes[-2:]
    assert (off["suppressed"], on["suppressed"]) == (True, False)
    assert off["change_id"] != on["change_id"] and off["segments"] == on["segments"] != {}
    assert segments[-2]["suppressed"] is True and segments[-2]["segments"] == {}
    assert segments[-1]["suppressed"] is False and segments[-1]["segments"] == off["segments"]
    status, body = customer_answer(engine, state, 303 * DAY)
    assert status == 200 and schema_errors("lookup-customer", body) == []
    assert body["features"]["avg_order_value_base"] == 30.0
    sizes = merge_sizes([segment_sizes([state]), segment_sizes([])])
    assert schema_errors("lookup-segments", sizes) == [] and sizes["customers"] == 1


def test_lookup_answers_for_withdrawn_and_erased_customers() -> None:
    engine = Engine(Settings())
    _, _, state = story(engine)
    off = engine.apply(state, Event("consent", "consent_withdrawn", "w2", "c1", 303 * DAY))
    assert off.state is not None
    status, body = customer_answer(engine, off.state, 304 * DAY)
    assert (status, body["suppressed"], body["segments"], body["features"]) == (
        200, True, {}, None)
    assert schema_errors("lookup-customer", body) == []
    erased = engine.apply(off.state, Event("consent", "erasure_requested", "x1", "c1", 305 * DAY))
    assert erased.erased and erased.notices == []
    assert customer_answer(engine, erased.state, 306 * DAY) == (404, {"error": "unknown_customer"})
    assert customer_answer(engine, None, 0.0) == customer_answer(engine, erased.state, 0.0)
    assert schema_errors("lookup-customer", {"error": "unknown_customer"}) == []
    assert segment_sizes([off.state])["suppressed"] == 1
    assert segment_sizes([erased.state]) == segment_sizes([])


def test_an_unknown_lookup_scope_is_400_naming_the_allowed_values() -> None:
    assert bad_scope(None) is None and bad_scope("local") is None
    for scope in ("bogus", "", "LOCAL", "all"):
        assert bad_scope(scope) == (400, {"error": "bad_scope", "allowed": ["local"]})
    refused = bad_scope("bogus")
    assert refused is not None and schema_errors("lookup-customer", refused[1]) == []


def test_dead_letters_carry_no_raw_id_when_pseudonymising() -> None:
    secret, raw = "s3cret", "alice@example.com"
    validator = Validator(Settings(pseudonymise_key=secret))
    body = {"event_id": "e1", "customer_id": raw, "ts": "2026-01-01T00:00:00Z",
            "type": "page_view", "page": f"/account/{raw}", "device": "toaster"}
    cases = [
        (raw.encode(), codec.dumps(body)),  # schema_invalid (device)
        (b"bob", codec.dumps({**body, "device": "mobile"})),  # key_mismatch
        (raw.encode(), b'{"customer_id": "' + raw.encode() + b'"'),  # not JSON
        (raw.encode(), codec.dumps({**body, "customer_id": raw * 10})),  # id too long
    ]
    for key, value in cases:
        result = validator.check("click", key, value)
        assert isinstance(result, Invalid), value
        letter = dead_letter(result, "clickstream", 0, 1, key, value, secret=secret)
        assert schema_errors("dead-letter", letter) == [], letter
        wire = codec.dumps(letter) + base64.b64decode(letter["value_b64"]) + base64.b64decode(
            letter["key_b64"])
        assert raw.encode() not in wire and b"bob" not in wire, letter
        assert letter["redaction"] in ("ids_pseudonymised", "payload_dropped")
        assert letter["value_bytes"] == len(value)
        assert base64.b64decode(letter["key_b64"]) == table_key(secret, key.decode())
    kept = dead_letter(Invalid("schema_invalid", "x"), "clickstream", 0, 1, raw.encode(),
                       codec.dumps(body), secret=secret)
    decoded = codec.loads(base64.b64decode(kept["value_b64"]))
    alias = pseudonymise(secret, raw)
    assert decoded["customer_id"] == alias and decoded["page"] == f"/account/{alias}"
    assert decoded["device"] == "toaster"  # the rest of the payload is kept for diagnosis
    plain = dead_letter(Invalid("not_json", "x"), "clickstream", 0, 1, b"k", b"{")
    assert (plain["redaction"], plain["value_b64"]) == (None, "ew==")


def test_replay_publishes_suppression_like_the_worker() -> None:
    def line(**fields: Any) -> bytes:
        return codec.dumps({"customer_id": "c1", **fields})

    lines = [
        line(event_id="p1", ts="2026-01-01T00:00:00Z", order_id="o1", amount=20, currency="EUR"),
        line(event_id="w1", ts="2026-01-02T00:00:00Z", type="consent_withdrawn"),
    ]
    rep = Replayer(Settings())
    out = list(replay_lines(lines, rep.settings, replayer=rep))
    assert [c["kind"] for c in out] == ["change", "change", "suppression"]
    assert out[-1]["suppressed"] is True and set(out[-1]["segments"]) == {
        "frequency", "lifecycle"}
    final = list(rep.segments())
    assert [(r["customer_id"], r["suppressed"], r["segments"]) for r in final] == [
        ("c1", True, {})]
    for record in out:
        assert schema_errors("segment-change", record) == []
    assert schema_errors("customer-segments", final[0]) == []
