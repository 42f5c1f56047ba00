"""The persona simulator: seeded, schema-valid, sorted, ground truth kept out of the events."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamseg import codec
from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine.events import kind_of, parse_ts
from streamseg.engine.validate import Invalid, Validator
from streamseg.simulate import PERSONAS, SimConfig, Simulation

Check = Callable[[str, Any], None]
CFG = SimConfig(customers=120, days=120, seed=11)


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, str], list[dict[str, Any]]]:
    sim = Simulation(CFG)
    return sim.truth, list(sim.events())


def test_same_seed_same_events_other_seed_other_events(
    run: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    truth, events = run
    again = Simulation(CFG)
    assert again.truth == truth
    assert list(again.events()) == events
    other = Simulation(SimConfig(customers=120, days=120, seed=12))
    assert list(other.events()) != events


def test_events_match_the_input_schemas_and_the_validator(
    run: tuple[dict[str, str], list[dict[str, Any]]], assert_schema: Check
) -> None:
    _, events = run
    validator = Validator(Settings())
    for ev in events:
        assert_schema("purchase" if kind_of(ev) == "purchase" else "clickstream", ev)
        result = validator.check_record(kind_of(ev), ev["customer_id"].encode(), ev)
        assert not isinstance(result, Invalid), (result, ev)
    assert len({ev["event_id"] for ev in events}) == len(events)


def test_sorted_by_event_time_and_inside_the_period(
    run: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    _, events = run
    times = [parse_ts(ev["ts"]) for ev in events]
    assert times == sorted(times)
    assert CFG.start <= times[0] and times[-1] < CFG.start + CFG.days * DAY + DAY


def test_ground_truth_is_not_in_the_events(
    run: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    truth, events = run
    assert set(truth.values()) == set(PERSONAS)
    assert {ev["customer_id"] for ev in events} <= set(truth)
    blob = b"\n".join(codec.dumps(ev) for ev in events)
    for persona in PERSONAS:
        assert persona.encode() not in blob


def test_personas_are_visible_in_behaviour(
    run: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    truth, events = run
    buys: Counter[str] = Counter()
    mobile: Counter[str] = Counter()
    total: Counter[str] = Counter()
    paid: defaultdict[str, float] = defaultdict(float)
    off: defaultdict[str, float] = defaultdict(float)
    last: dict[str, float] = {}
    for ev in events:
        p = truth[ev["customer_id"]]
        total[p] += 1
        mobile[p] += ev["device"] == "mobile"
        last[ev["customer_id"]] = parse_ts(ev["ts"])
        if ev["type"] == "purchase":
            buys[p] += 1
            paid[p] += ev["amount"]
            off[p] += ev["discount"]
    per_customer = {p: buys[p] / Counter(truth.values())[p] for p in PERSONAS}
    assert per_customer["loyal_frequent"] > 10 > 2 > per_customer["browser"]
    assert mobile["mobile_first"] / total["mobile_first"] > 0.9
    assert all(mobile[p] / total[p] < 0.5 for p in PERSONAS if p != "mobile_first")
    share = {p: off[p] / (off[p] + paid[p]) for p in PERSONAS if buys[p]}
    assert share["bargain_hunter"] > 0.3
    assert all(v < 0.12 for p, v in share.items() if p != "bargain_hunter")
    lapse_end = CFG.start + 0.45 * CFG.days * DAY
    lapsers = [c for c, p in truth.items() if p == "lapsing" and c in last]
    assert lapsers and all(last[c] < lapse_end + DAY for c in lapsers)


def test_invalid_share_injects_events_the_validator_rejects() -> None:
    sim = Simulation(SimConfig(customers=40, days=30, seed=3, invalid_share=0.05))
    validator = Validator(Settings())
    reasons: Counter[str] = Counter()
    events = list(sim.events())
    for ev in events:
        result = validator.check(kind_of(ev), None, codec.dumps(ev))
        if isinstance(result, Invalid):
            reasons[result.reason] += 1
    bad = sum(reasons.values())
    assert 0.03 * len(events) < bad < 0.07 * len(events)
    assert set(reasons) <= {"schema_invalid", "unknown_event_type", "unsupported_currency"}
    clean = Simulation(SimConfig(customers=40, days=30, seed=3))
    assert all(
        not isinstance(validator.check(kind_of(ev), None, codec.dumps(ev)), Invalid)
        for ev in clean.events()
    )


def test_seasonal_buyers_buy_mostly_in_the_gift_season() -> None:
    sim = Simulation(SimConfig(customers=200, days=365, seed=5, personas=("seasonal_gift",)))
    season = [(parse_ts("2025-11-15T00:00:00Z"), parse_ts("2025-12-25T00:00:00Z"))]
    buys = [parse_ts(e["ts"]) for e in sim.events() if e["type"] == "purchase"]
    inside = sum(any(a <= t < b for a, b in season) for t in buys)
    assert inside / len(buys) > 0.5  # 40 of 365 days hold most of the orders


def test_unknown_persona_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown personas"):
        Simulation(SimConfig(personas=("whales",)))


def test_cli_writes_events_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, truth = tmp_path / "ev.jsonl", tmp_path / "truth.json"
    rc = main(["simulate", "--customers", "5", "--days", "10", "--seed", "2",
               "--out", str(out), "--truth", str(truth)])
    assert rc == 0
    lines = out.read_bytes().splitlines()
    expected = list(Simulation(SimConfig(customers=5, days=10, seed=2)).events())
    assert [codec.loads(x) for x in lines] == expected
    assert json.loads(truth.read_text()) == Simulation(SimConfig(customers=5, seed=2)).truth
    assert f"simulated {len(expected)} events for 5 customers" in capsys.readouterr().err


def test_cli_rejects_a_bad_start_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--start", "tomorrow", "--out", "-"]) == 2
    assert "--start" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "rule"), [
    ("--customers", "-5", "must be a whole number >= 1, got '-5'"),
    ("--customers", "0", "must be a whole number >= 1, got '0'"),
    ("--days", "0", "must be a number > 0, got '0'"),
    ("--days", "nan", "must be a number > 0, got 'nan'"),
    ("--invalid-share", "2", "must be a number from 0 to 1, got '2'"),
    ("--invalid-share", "-0.1", "must be a number from 0 to 1, got '-0.1'"),
    ("--rate", "-1", "must be a number >= 0, got '-1'"),
])
def test_cli_rejects_out_of_range_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, rule: str
) -> None:
    out = tmp_path / "ev.jsonl"
    with pytest.raises(SystemExit) as stop:
        main(["simulate", "--customers", "2", "--days", "3", option, value, "--out", str(out)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"streamseg simulate: error: argument {option}: {rule}")
    assert not out.exists()
    assert main(["simulate", "--customers", "2", "--days", "3", "--invalid-share", "1",
                 "--out", str(out)]) == 0  # the bounds themselves are accepted
