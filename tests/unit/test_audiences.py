"""Rule audiences: file errors (FILE:LINE), windows, due times and clock exits, holdouts,
records against the schemas, and the batch acceptance on simulated data."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine.audiencefile import parse
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.audience import AudienceSegmenter, holdout_fraction
from streamseg.errors import AudienceFileError
from streamseg.resources import SCHEMA_DIR
from streamseg.simulate import SimConfig, Simulation
from streamseg.simulatecli import write_jsonl
from streamseg.tools.audiences import accept

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "audiences.json"
CART = {"audiences": {"cart": {"description": "Cart abandoners", "when": {"and": [
    {"count": "add_to_cart", "days": 7, ">=": 1}, {"count": "purchase", "days": 7, "=": 0}]}}}}


def write(tmp_path: Path, doc: Any, name: str = "aud.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return str(path)


def engine_with(tmp_path: Path, doc: Any, **kw: Any) -> Engine:
    return Engine(Settings(audiences_file=write(tmp_path, doc), **kw))


def click(i: int, cid: str, day: float, type_: str = "add_to_cart", device: str | None = None
          ) -> Event:
    return Event("click", type_, f"e{i}", cid, day * DAY, device=device)


def buy(i: int, cid: str, day: float, amount: float = 50.0) -> Event:
    return Event("purchase", "purchase", f"p{i}", cid, day * DAY, amount=amount)


def audience_changes(out: Any) -> list[tuple[str | None, str, str, str]]:
    return [(c["from_segment"], c["to_segment"], c["trigger"], c["event_time"])
            for c in out.changes if c["segmenter"].startswith("audience:")]


# --- the file: FILE:LINE errors --------------------------------------------------------

BAD_FILES = [
    ('{"audiences": {\n "a": {\n  "when": {"feature": "spend", ">": 1}}}}', 3, "a",
     "unknown feature 'spend'"),
    ('{"audiences": {\n "a": {"when": {"and": [\n  {"feature": "purchases_total", ">": 1},\n'
     '  {"segment": "loyalty", "=": "x"}]}}}}', 4, "a", "unknown segmenter 'loyalty'"),
    ('{"audiences": {\n "a": {"when": {"feature": "purchases_total"}}}}', 2, "a",
     "want exactly one comparison"),
    ('{"audiences": {\n "a": {"when": {"or": [\n  {"segment": "lifecycle", "=": "new"},\n'
     '  {"segment": "lifecycle", "=": "old"}]}}}}', 4, "a", "lifecycle has no segment 'old'"),
    ('{"audiences": {\n "ok": {"when": {"feature": "purchases_total", ">": 0}},\n'
     ' "b": {\n   "when": {"count": "add_to_kart", "days": 7, ">": 0}}}}', 4, "b",
     "unknown event type 'add_to_kart'"),
    ('{"audiences": {\n "a": {"when": {"count": "purchase",\n  "days": 0, ">": 0}}}}', 3, "a",
     "days wants a whole number"),
    ('{"audiences": {\n "a": {\n  "holdout": 2, "when": {"feature": "purchases_total",'
     ' ">": 0}}}}', 3, "a", "holdout is a share 0..1"),
    ('{"audiences": {\n "a": {"wen": {}}}}', 2, "a", 'want an object with a "when"'),
    ('{"audiences": {\n "Bad-Name": {"when": {"feature": "purchases_total", ">": 0}}}}', 2,
     "Bad-Name", "a name is 1-48"),
    ('{"audiences": {\n "a": {"when": {"feature": "purchases_total", ">": "x"}}}}', 2, "a",
     "feature purchases_total compares with numbers"),
    ('{"audiences": {\n "a": {"when": {\n   "not": {"segment": "lifecycle", "=": "gone"}}}}}',
     3, "a", "lifecycle has no segment 'gone'"),
    ('{"audiences": {\n "a": {"when": {"segment": "audience:b", "=": "in"}},\n'
     ' "b": {"when": {"feature": "purchases_total", ">": 0}}}}', 2, "a",
     "unknown segmenter 'audience:b'"),
    # rules that could never match (review11): each refused where it stands
    ('{"audiences": {\n "a": {"when": {"feature": "top_channel", ">=": 3}}}}', 2, "a",
     "feature top_channel is a name: compare it with =, != or in, not >="),
    ('{"audiences": {\n "a": {"when": {"or": [\n  {"feature": "top_device", "=": "mobile"},\n'
     '  {"feature": "top_channel", "=": "emial"}]}}}}', 4, "a",
     "feature top_channel is never 'emial' (one of web, app, email, social, search, ads, "
     "store, other)"),
    ('{"audiences": {\n "a": {"when": {"attribute": "houshold_size", ">=": 3}}}}', 2, "a",
     "unknown attribute 'houshold_size' (did you mean 'household_size'? the profile "
     "schema's are age_band, "),
    ('{"audiences": {\n "a": {"when": {"attribute": "household_size", "in": [1, "2"]}}}}', 2,
     "a", 'attribute household_size holds a number value, never "2"'),
    ('{"audiences": {\n "a": {"when": {"attribute": "marital_status", "=": "maried"}}}}', 2,
     "a", "attribute marital_status is never 'maried' (one of single, married, "),
    ('{"audiences": {\n "a": {"when": {"sum": "page_view", "days": 7, ">=": 3}}}}', 2, "a",
     "page_view events have no amount: sum only purchase"),
    ('{"audiences": {\n "a": {"when": {"feature": "purchases_total", ">=": 1}},\n'
     ' "b": {"when": {"feature": "purchases_total", ">=": 1}},\n'
     ' "a": {"when": {"feature": "purchases_total", ">=": 5}}}}', 4, "a",
     "audience a defined twice (first at line 2): a JSON object keeps only the last"),
    ('{"audiences": {\n "a": {"when": {"and": [\n  {"feature": "purchases_total",\n'
     '   ">=": 1, ">=": 5}]}}}}', 4, "a",
     'key ">=" given twice in one object (first at line 4): a JSON object keeps only the last'),
]


@pytest.mark.parametrize(("text", "line", "audience", "message"), BAD_FILES)
def test_a_bad_file_is_one_line_with_its_line_number(
    tmp_path: Path, text: str, line: int, audience: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AudienceFileError) as caught:
        Engine(Settings(audiences_file=path))
    err = caught.value
    assert (err.line, err.audience) == (line, audience)
    assert str(err).startswith(f"{path}:{line}: audience {audience}: {message}"), str(err)
    assert "\n" not in str(err)


def test_invalid_json_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{"audiences": {\n  "a": {"when": }\n}}')
    with pytest.raises(AudienceFileError, match=rf"^{path}:2: invalid JSON: Expecting value"):
        Engine(Settings(audiences_file=path))


@pytest.mark.parametrize("command", [["replay", "{events}", "--out", "{out}"],
                                     ["check", "--offline"], ["worker"]])
def test_replay_and_check_stop_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    path = write(tmp_path, BAD_FILES[0][0])
    events = tmp_path / "ev.jsonl"
    events.write_text("")
    monkeypatch.setenv("STREAMSEG_AUDIENCES_FILE", path)
    monkeypatch.setenv("STREAMSEG_BROKER_WAIT_S", "0")  # the worker stops before the broker
    monkeypatch.setenv("STREAMSEG_METRICS_PORT", "0")
    args = [a.format(events=events, out=tmp_path / "out.jsonl") for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"streamseg: error: {path}:3: audience a: unknown feature 'spend' " + (
        err[-1].split("unknown feature 'spend' ", 1)[1])


def test_the_schema_names_the_profile_schemas_attributes() -> None:
    from streamseg.engine.contract import known_attributes
    schema = json.loads((SCHEMA_DIR / "audiences.schema.json").read_text())
    attribute = next(c for c in schema["$defs"]["condition"]["oneOf"]
                     if c["required"] == ["attribute"])["properties"]["attribute"]
    assert set(attribute["anyOf"][0]["enum"]) == known_attributes()


def test_the_examples_compile_and_match_the_file_schema() -> None:
    doc = json.loads(EXAMPLES.read_text())
    schema = json.loads((SCHEMA_DIR / "audiences.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    eng = Engine(Settings(audiences_file=str(EXAMPLES)))
    assert [s.name for s in eng.segmenters][-4:] == [
        "audience:cart_abandoners", "audience:high_value_lapsing",
        "audience:new_mobile_buyers", "audience:big_families_mid_income"]
    assert eng.history is not None
    assert (sorted(eng.history.types), eng.history.horizon_days) == (
        ["add_to_cart", "purchase"], 7)


def test_schema_rejects_what_the_compiler_rejects_structurally() -> None:
    schema = json.loads((SCHEMA_DIR / "audiences.schema.json").read_text())
    v = jsonschema.Draft202012Validator(schema)
    # no comparison, days 0, holdout 2, no "when", bad name, attribute typo, sum page_view
    structural = [2, 5, 6, 7, 8, 14, 17]
    for i, (text, *_) in enumerate(BAD_FILES):
        assert bool(list(v.iter_errors(json.loads(text)))) == (i in structural), text
    assert not list(v.iter_errors(json.loads(EXAMPLES.read_text())))


# --- windows, due times, clock exits --------------------------------------------------

def test_cart_abandoner_enters_at_the_event_and_leaves_by_the_clock(tmp_path: Path) -> None:
    eng = engine_with(tmp_path, CART)
    out = eng.apply(None, click(1, "c", 10.25))
    assert audience_changes(out) == [(None, "in", "event", "1970-01-11T06:00:00Z")]
    state = out.state
    assert state is not None
    # day 10 leaves the 7-day window at the start of day 17 (exact due time)
    assert eng.segmenters[-1].due(state, 10.25 * DAY) == 17 * DAY
    assert eng.due(state) == 17 * DAY or eng.due(state) < 17 * DAY
    later = eng.tick(state, 20 * DAY)
    assert audience_changes(later) == [("in", "out", "clock", "1970-01-18T00:00:00Z")]


def test_the_example_cart_abandoners_waits_for_an_idle_hour() -> None:
    """review11: the example entered at the add-to-cart, so a customer mid-checkout got the
    "abandoned cart" email minutes before buying. Now it enters by the clock one hour
    after the customer's last activity, and never for a purchase within that hour."""
    eng = Engine(Settings(audiences_file=str(EXAMPLES)))

    def cart(out: Any) -> list[tuple[str | None, str, str, str]]:
        return [(c["from_segment"], c["to_segment"], c["trigger"], c["event_time"])
                for c in out.changes if c["segmenter"] == "audience:cart_abandoners"]

    quick = eng.apply(None, click(1, "q", 10.25))
    assert cart(quick) == []
    bought = eng.apply(quick.state, buy(2, "q", 10.25 + 3 / 1440))  # 3 minutes later
    assert cart(bought) == [] and cart(eng.tick(bought.state, 30 * DAY)) == []  # type: ignore[arg-type]

    idle = eng.apply(None, click(3, "c", 10.25))  # 06:00 on day 10
    assert cart(idle) == [] and idle.state is not None
    entered = eng.tick(idle.state, 10.5 * DAY)
    assert cart(entered) == [(None, "in", "clock", "1970-01-11T07:00:00Z")]
    back = eng.apply(entered.state, click(4, "c", 10.5, "page_view"))  # browses at 12:00
    assert cart(back) == [("in", "out", "event", "1970-01-11T12:00:00Z")]
    assert cart(eng.tick(back.state, 30 * DAY)) == [  # type: ignore[arg-type]
        ("out", "in", "clock", "1970-01-11T13:00:00Z"),
        ("in", "out", "clock", "1970-01-18T00:00:00Z")]  # the cart leaves the 7-day window


def test_windows_count_the_days_of_the_buying_day_start(tmp_path: Path) -> None:
    """With days starting at 09:00 UTC (4 am in New York), a cart added at 03:00 UTC on
    day 10 belongs to day 9: it leaves the 7-day window at 09:00 UTC on day 16, not at
    UTC midnight of day 17."""
    eng = engine_with(tmp_path, CART, buying_day_start_h=9)
    out = eng.apply(None, click(1, "c", 10.125))
    assert audience_changes(out) == [(None, "in", "event", "1970-01-11T03:00:00Z")]
    assert out.state is not None
    assert eng.segmenters[-1].due(out.state, 10.125 * DAY) == 16.375 * DAY
    later = eng.tick(out.state, 20 * DAY)
    assert audience_changes(later) == [("in", "out", "clock", "1970-01-17T09:00:00Z")]


def test_a_window_day_start_is_the_same_as_shifting_every_event_time() -> None:
    """The example audiences with days starting at 07:30 UTC, over simulated events all
    7.5 hours later, publish exactly the audience changes of UTC days over the original
    events: window buckets, exits and due times follow the day start."""
    from streamseg import codec
    from streamseg.engine.buyingdays import HOUR
    from streamseg.engine.events import format_ts, parse_ts
    from streamseg.replay import Replayer

    shift = 7.5 * HOUR
    events = list(Simulation(SimConfig(customers=150, days=40, seed=5)).events())

    def run(start_h: float, by: float) -> list[tuple[object, ...]]:
        rep = Replayer(Settings(audiences_file=str(EXAMPLES), buying_day_start_h=start_h))
        out = []
        for ev in events:
            got = rep.feed(codec.dumps({**ev, "ts": format_ts(parse_ts(ev["ts"]) + by)}))
            assert isinstance(got, list)
            out += [(c["customer_id"], c["segmenter"], c["from_segment"], c["to_segment"],
                     c["trigger"], parse_ts(c["event_time"]) - by)
                    for c in got if c["segmenter"].startswith("audience:")]
        return out

    plain = run(0.0, 0.0)
    assert sum(1 for c in plain if c[4] == "clock") > 20  # windows did expire by the clock
    assert run(7.5, shift) == plain


def test_a_purchase_exits_at_the_event_and_re_entry_follows_when_it_ages_out(
    tmp_path: Path,
) -> None:
    eng = engine_with(tmp_path, CART)
    s = eng.apply(None, click(1, "c", 0.5)).state
    assert s is not None
    out = eng.apply(s, buy(2, "c", 1.5))
    assert audience_changes(out) == [("in", "out", "event", "1970-01-02T12:00:00Z")]
    s = eng.apply(out.state, click(3, "c", 6.5)).state  # cart again, purchase still inside
    assert s is not None and s.segments["audience:cart"][0] == "out"
    # day 1 (the purchase) leaves at day 8, day 0 (first cart) has left at day 7: in again
    back = eng.tick(s, 8.5 * DAY)
    assert audience_changes(back) == [("out", "in", "clock", "1970-01-09T00:00:00Z")]
    gone = eng.tick(back.state, 30 * DAY)  # type: ignore[arg-type]
    assert audience_changes(gone) == [("in", "out", "clock", "1970-01-14T00:00:00Z")]


def test_sum_window_and_history_stays_bounded(tmp_path: Path) -> None:
    doc = {"audiences": {"big_week": {"when": {"sum": "purchase", "days": 3, ">=": 100}}}}
    eng = engine_with(tmp_path, doc)
    s = None
    for i in range(40):
        s = eng.apply(s, buy(i, "c", i * 1.0, amount=40.0)).state
    assert s is not None
    assert [row[0] for row in s.history["purchase"]] == [37, 38, 39]  # 3 days kept
    assert s.segments["audience:big_week"][0] == "in"  # 3 x 40 in the last 3 days
    late = eng.apply(s, buy(99, "c", 2.0, amount=500.0))  # too old for any window: dropped
    assert late.state is not None and len(late.state.history["purchase"]) == 3


def test_without_an_audiences_file_nothing_is_kept() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, click(1, "c", 1.0)).state
    assert eng.history is None and s is not None and s.history == {}
    assert not any(seg.name.startswith("audience:") for seg in eng.segmenters)


def test_days_since_threshold_enters_by_the_clock_at_its_second(tmp_path: Path) -> None:
    doc = {"audiences": {"lapsing": {"when": {"and": [
        {"feature": "total_spend_base", ">=": 100},
        {"feature": "days_since_last_purchase", ">": 45},
        {"not": {"segment": "lifecycle", "=": "lapsed"}}]}}}}
    eng = engine_with(tmp_path, doc)
    s = eng.apply(None, buy(1, "c", 0.0, amount=150.0)).state
    assert s is not None
    out = eng.tick(s, 200 * DAY)
    got = audience_changes(out)
    assert got == [(None, "in", "clock", "1970-02-15T00:00:01Z"),
                   ("in", "out", "clock", "1970-06-30T00:00:01Z")]  # lifecycle lapsed at 180d


def test_decayed_feature_threshold_due_is_exact(tmp_path: Path) -> None:
    doc = {"audiences": {"hot": {"when": {"feature": "purchases_weighted", ">=": 0.5}}}}
    eng = engine_with(tmp_path, doc, half_life_days=10.0)
    s = eng.apply(None, buy(1, "c", 0.0)).state
    assert s is not None
    out = eng.tick(s, 30 * DAY)
    # 1 purchase halves to 0.5 at 10 days: still >= 0.5 there, out one second later
    assert audience_changes(out)[-1] == ("in", "out", "clock", "1970-01-11T00:00:01Z")


def test_attributes_and_an_audience_reading_another(tmp_path: Path) -> None:
    doc = {"audiences": {
        "family": {"when": {"attribute": "household_size", ">=": 3}},
        "family_buyers": {"when": {"and": [{"segment": "audience:family", "=": "in"},
                                           {"feature": "purchases_total", ">=": 1}]}}}}
    eng = engine_with(tmp_path, doc)
    s = CustomerState.new("c", 0.0)
    s.attributes = {"household_size": 4, "income_band": "50-74K"}
    out = eng.apply(s, buy(1, "c", 1.0))
    assert [c["segmenter"] for c in out.changes if c["to_segment"] == "in"] == [
        "audience:family", "audience:family_buyers"]
    s2 = CustomerState.new("d", 0.0)
    s2.attributes = {"household_size": "3"}  # a text value never compares with a number
    assert not [c for c in eng.apply(s2, buy(2, "d", 1.0)).changes
                if c["segmenter"].startswith("audience:")]


# --- holdouts ---------------------------------------------------------------------------

def test_holdout_is_deterministic_and_close_to_its_share() -> None:
    [spec] = parse(json.dumps(CART), "a.json")
    a = AudienceSegmenter(spec, share=0.1, salt="s1")
    b = AudienceSegmenter(spec, share=0.1, salt="s1")
    ids = [f"c{i}" for i in range(20_000)]
    flags = [a.holdout(c) for c in ids]
    assert flags == [b.holdout(c) for c in ids]  # same on every worker and replay
    assert 0.09 < sum(flags) / len(ids) < 0.11
    other = AudienceSegmenter(spec, share=0.1, salt="s2")
    assert flags != [other.holdout(c) for c in ids]  # the salt reshuffles
    assert not any(AudienceSegmenter(spec, share=0.0, salt="s1").holdout(c) for c in ids)
    assert holdout_fraction("s1", "cart", "c1") != holdout_fraction("s1", "other", "c1")


def test_holdout_flag_in_records_per_audience_share_overrides(
    tmp_path: Path, assert_schema: Callable[[str, Any], None]
) -> None:
    doc = json.loads(json.dumps(CART))
    doc["audiences"]["cart"]["holdout"] = 1.0
    doc["audiences"]["all"] = {"when": {"feature": "events_total", ">=": 1}}
    eng = engine_with(tmp_path, doc, holdout_share=0.0)
    out = eng.apply(None, click(1, "c", 1.0))
    flags = {c["segmenter"]: c.get("holdout") for c in out.changes}
    assert flags["audience:cart"] is True and flags["audience:all"] is False
    assert "holdout" not in next(c for c in out.changes if c["segmenter"] == "lifecycle")
    for c in out.changes:
        assert_schema("segment-change", c)
    assert out.segments is not None
    assert_schema("customer-segments", out.segments)


def test_emitted_records_match_the_schemas_on_a_simulation(
    assert_schema: Callable[[str, Any], None],
) -> None:
    buf = io.BytesIO()
    write_jsonl(Simulation(SimConfig(customers=60, days=40, seed=5)).events(), buf)
    settings = Settings(audiences_file=str(EXAMPLES), holdout_share=0.2)
    _, changes = accept(buf.getvalue().splitlines(), settings)
    audience = [c for c in changes if c["segmenter"].startswith("audience:")]
    assert audience and all(isinstance(c["holdout"], bool) for c in audience)
    for c in audience:
        assert_schema("segment-change", c)


# --- acceptance: published membership at the end == the batch evaluation ---------------

@pytest.mark.parametrize("start_h", [0.0, 9.0])
def test_published_membership_equals_the_batch_evaluation_on_simulated_data(
    start_h: float,
) -> None:
    buf = io.BytesIO()
    sim = Simulation(SimConfig(customers=250, days=120, seed=11))
    write_jsonl(sim.events(), buf)
    lines = buf.getvalue().splitlines()
    ids = sorted({json.loads(x)["customer_id"] for x in lines})
    bands = ["Under 15K", "35-49K", "50-74K", "75-99K", "100-124K"]
    attrs = {c: {"household_size": 1 + i % 5, "income_band": bands[i % 4 + i % 2]}
             for i, c in enumerate(ids) if i % 7}
    settings = Settings(audiences_file=str(EXAMPLES), buying_day_start_h=start_h)
    report, changes = accept(lines, settings, attrs)
    assert set(report) == {"cart_abandoners", "high_value_lapsing", "new_mobile_buyers",
                           "big_families_mid_income"}
    for name, figures in report.items():
        assert figures["mismatches"] == 0, (name, figures)
        assert figures["agreement_pct"] == 100.0
    # the check can fail: every audience has members and clock-driven moves happen
    assert all(f["batch_members"] > 0 for f in report.values()), report
    triggers = {c["trigger"] for c in changes if c["segmenter"].startswith("audience:")}
    assert triggers == {"event", "clock"}


def test_or_in_and_missing_values() -> None:
    [spec] = parse(json.dumps({"audiences": {"a": {"when": {"or": [
        {"feature": "top_device", "in": ["mobile", "tablet"]},
        {"attribute": "country", "=": "DE"},
        {"feature": "avg_days_between_purchases", "<": 10}]}}}}), "a.json")
    test = spec.rule.test
    s = CustomerState.new("c", 0.0)
    assert not test(s, 0.0)  # no device, no attribute, < 2 purchases: all missing, all false
    s.attributes["country"] = "DE"
    assert test(s, 0.0)
    s.attributes["country"] = "FR"
    s.d_devices = [0.0, 0.0, 2.0, 0.0]  # tablet
    assert test(s, 0.0)
    s.d_devices = [0.0, 2.0, 0.0, 0.0]
    s.purchases, s.first_purchase, s.last_purchase = 3, 0.0, 10 * DAY  # gap 5 days
    assert test(s, 20 * DAY) and spec.rule.nxt is None  # nothing here moves with time
    [neg] = parse('{"audiences": {"n": {"when": {"not": {"attribute": "x_vip", "=": true}}}}}',
                  "n.json")
    assert neg.rule.test(CustomerState.new("d", 0.0), 0.0)  # missing: the comparison is false


def test_a_boolean_equals_only_a_boolean_and_a_number_only_a_number(tmp_path: Path) -> None:
    """review11: ``{"attribute": "x_vip", "=": true}`` took in a profile with ``"x_vip": 1``
    (Python's ``True == 1``); the same in ``in`` lists and for numbers against booleans."""
    doc = {"audiences": {
        "vip": {"when": {"attribute": "x_vip", "=": True}},
        "vip_in": {"when": {"attribute": "x_vip", "in": [True, "yes"]}},
        "one": {"when": {"attribute": "x_n", "=": 1}},
        "one_in": {"when": {"attribute": "x_n", "in": [1, 2]}},
        "not_vip": {"when": {"attribute": "x_vip", "!=": True}}}}
    specs = {s.name: s.rule.test for s in parse(json.dumps(doc), "a.json")}
    s = CustomerState.new("c", 0.0)
    s.attributes = {"x_vip": 1, "x_n": True}
    assert {n: t(s, 0.0) for n, t in specs.items()} == {
        "vip": False, "vip_in": False, "one": False, "one_in": False, "not_vip": True}
    s.attributes = {"x_vip": True, "x_n": 1.0}
    assert {n: t(s, 0.0) for n, t in specs.items()} == {
        "vip": True, "vip_in": True, "one": True, "one_in": True, "not_vip": False}
    # the batch reference agrees (it is what the acceptance compares with)
    buf = io.BytesIO()
    write_jsonl(Simulation(SimConfig(customers=20, days=10, seed=5)).events(), buf)
    lines = buf.getvalue().splitlines()
    ids = sorted({json.loads(x)["customer_id"] for x in lines})
    attrs = {c: {"x_vip": [1, True][i % 2], "x_n": [True, 1][i % 2]} for i, c in enumerate(ids)}
    report, _ = accept(lines, Settings(audiences_file=write(tmp_path, doc)), attrs)
    assert {n: (f["batch_members"], f["mismatches"]) for n, f in report.items()} == {
        n: (len(ids) // 2 if n != "not_vip" else len(ids) - len(ids) // 2, 0) for n in doc[
            "audiences"]}


def test_a_profile_record_moves_a_demographic_audience_at_its_time() -> None:
    eng = Engine(Settings(audiences_file=str(EXAMPLES)))
    s = eng.apply(None, buy(1, "c", 1.0)).state
    profile = Event("profile", "profile", "pr1", "c", 2 * DAY,
                    attributes={"household_size": 4, "income_band": "50-74K"})
    out = eng.apply(s, profile)
    assert audience_changes(out) == [(None, "in", "event", "1970-01-03T00:00:00Z")]
    moved = eng.apply(out.state, Event("profile", "profile", "pr2", "c", 3 * DAY,
                                       attributes={"household_size": 2}))
    assert audience_changes(moved) == [("in", "out", "event", "1970-01-04T00:00:00Z")]


def test_an_unreadable_file_is_named_without_a_line_number(tmp_path: Path) -> None:
    path = tmp_path / "audiences.json"
    path.write_bytes(b'{"audiences": [{"name": "caf\xe9"}]}')
    with pytest.raises(AudienceFileError) as caught:
        Engine(Settings(audiences_file=str(path)))
    assert caught.value.line is None
    assert str(caught.value).startswith(
        f"{path}: cannot read the audiences file: 'utf-8' codec can't decode byte 0xe9 in ")


def test_the_reference_replay_gives_a_profile_at_an_accepted_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """c2 has profile attributes; its first record is a withdrawal dated 2150. The profile
    was fed at 2150, refused, and the reference tool stopped with a ValueError; then, fed
    before the grant while c2 was still withdrawn, it was skipped (no consent) but marked
    as given, so c2 ended with no attributes (reviews 31). It is fed at c2's purchase."""
    from streamseg import codec
    from streamseg.engine.events import parse_ts
    from streamseg.replay import Replayer
    from streamseg.tools import audiences

    made: list[Replayer] = []

    class Kept(Replayer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(audiences, "Replayer", Kept)
    lines = [codec.dumps({"event_id": "e1", "customer_id": "c1", "order_id": "o1",
                          "amount": 5.0, "currency": "EUR", "ts": "2011-01-01T00:00:00Z"}),
             codec.dumps({"event_id": "w1", "customer_id": "c2", "type": "consent_withdrawn",
                          "ts": "2150-01-01T00:00:00Z"}),
             codec.dumps({"event_id": "g1", "customer_id": "c2", "type": "consent_granted",
                          "ts": "2011-01-02T00:00:00Z"}),
             codec.dumps({"event_id": "e2", "customer_id": "c2", "order_id": "o2",
                          "amount": 5.0, "currency": "EUR", "ts": "2011-01-03T00:00:00Z"})]
    _, accepted, clock = audiences.replay_events(lines, Settings(), {"c2": {"country": "DE"}})
    assert [e.event_id for e in accepted] == ["e1", "w1", "g1", "e2"]
    assert clock < parse_ts("2011-01-04T00:00:00Z")  # (the event clock less the lateness)
    assert made[0].states["c2"].attributes == {"country": "DE"}
