"""``streamseg replay``: the engine over JSON lines, clock-driven moves, clear errors."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamseg import codec
from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine.deadletters import dead_letter
from streamseg.engine.events import format_ts, parse_ts
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid, Valid, Validator, pseudonymise
from streamseg.errors import InputFileError
from streamseg.replay import Replayer, replay_lines
from streamseg.simulate import SimConfig, Simulation

Check = Callable[[str, Any], None]


def line(**fields: Any) -> bytes:
    return codec.dumps(fields)


def buy(eid: str, cid: str, ts: str, amount: float = 20.0) -> bytes:
    return line(event_id=eid, customer_id=cid, ts=ts, order_id=eid, amount=amount, currency="EUR")


def view(eid: str, cid: str, ts: str) -> bytes:
    return line(event_id=eid, customer_id=cid, type="page_view", ts=ts)


@pytest.fixture(scope="module")
def sim_lines() -> list[bytes]:
    sim = Simulation(SimConfig(customers=30, days=60, seed=9))
    return [codec.dumps(ev) for ev in sim.events()]


def test_replay_is_the_engine_applied_by_hand(sim_lines: list[bytes]) -> None:
    # a lateness longer than the run keeps the clock behind every customer: no ticks
    cfg = Settings(allowed_lateness_s=1e9)
    changes = list(replay_lines(sim_lines, cfg))
    engine, validator = Engine(cfg), Validator(cfg)
    states: dict[str, Any] = {}
    by_hand: list[dict[str, Any]] = []
    for raw in sim_lines:
        record = codec.loads(raw)
        result = validator.check("purchase" if "order_id" in record else "click", None, raw)
        assert isinstance(result, Valid)
        out = engine.apply(states.get(result.event.customer_id), result.event)
        states[result.event.customer_id] = out.state
        by_hand += out.changes
    assert changes == by_hand
    assert len(changes) > 100


def test_replay_is_deterministic_with_clock_ticks(sim_lines: list[bytes]) -> None:
    rep = Replayer(Settings())
    changes = list(replay_lines(sim_lines, Settings(), replayer=rep))
    assert changes == list(replay_lines(sim_lines, Settings()))
    assert rep.counts["tick"] > 0
    assert any(c["trigger"] == "clock" for c in changes)


def test_outputs_match_the_schemas(sim_lines: list[bytes], assert_schema: Check) -> None:
    rep = Replayer(Settings())
    changes = list(replay_lines(sim_lines, Settings(), replayer=rep))
    assert changes
    for change in changes:
        assert_schema("segment-change", change)
    segments = list(rep.segments())
    assert len(segments) == len({codec.loads(x)["customer_id"] for x in sim_lines})
    for record in segments:
        assert_schema("customer-segments", record)
    assert rep.counts["processed"] == len(sim_lines)


def test_idle_customer_lapses_on_the_event_clock() -> None:
    cfg = Settings(allowed_lateness_s=0.0, min_dwell_s=0.0)
    lines = [buy("e1", "quiet", "2026-01-01T00:00:00Z")]
    # another customer keeps the clock moving, one event a week for 30 weeks
    start = parse_ts("2026-01-01T12:00:00Z")
    lines += [view(f"v{w}", "busy", format_ts(start + 5 * w * DAY)) for w in range(45)]
    quiet = [(c["segmenter"], c["to_segment"], c["trigger"], c["event_time"])
             for c in replay_lines(lines, cfg) if c["customer_id"] == "quiet"]
    assert ("lifecycle", "at_risk", "clock", "2026-04-01T00:00:01Z") in quiet
    assert ("frequency", "lapsed", "clock", "2026-06-30T00:00:01Z") in quiet
    assert ("lifecycle", "lapsed", "clock", "2026-06-30T00:00:01Z") in quiet


def test_bad_line_names_file_line_and_field() -> None:
    lines = [buy("e1", "c1", "2026-01-01T00:00:00Z"), b"",
             buy("e2", "c1", "2026-01-02T00:00:00Z", amount=-3.0)]
    with pytest.raises(InputFileError) as err:
        list(replay_lines(lines, Settings(), path="orders.jsonl"))
    assert (err.value.path, err.value.line, err.value.field) == ("orders.jsonl", 3, "amount")
    assert str(err.value).startswith("orders.jsonl:3: field amount: schema_invalid: -3")


def test_dead_letters_instead_of_stopping(assert_schema: Check) -> None:
    lines = [b'{"event_id": ', buy("e1", "c1", "2026-01-01T00:00:00Z"), b"[1, 2]",
             line(event_id="e2", customer_id="c1", type="teleport", ts="2026-01-01T00:00:00Z")]
    letters: list[dict[str, Any]] = []
    changes = list(replay_lines(lines, Settings(), "in.jsonl", dead_letters=letters.append))
    assert [c["to_segment"] for c in changes][:2] == ["one_time", "new"]
    assert [(d["reason"], d["source"]["offset"]) for d in letters] == [
        ("not_json", 1), ("not_object", 3), ("unknown_event_type", 4)]
    for record in letters:
        assert_schema("dead-letter", record)
        assert record["source"]["topic"] == "in.jsonl"


def test_dead_letters_are_redacted_like_the_workers(assert_schema: Check) -> None:
    """With a pseudonymisation key no raw customer id reaches a replay's dead letter."""
    settings = Settings(pseudonymise_key="abcdefghij")
    bad = line(event_id="e2", customer_id="c000007", type="page_view", ts="yesterday")
    letters: list[dict[str, Any]] = []
    list(replay_lines([bad, b"{c000007"], settings, "in.jsonl", dead_letters=letters.append))
    assert letters == [
        dead_letter(Invalid("schema_invalid", '"yesterday" is not a "date-time"', "ts"),
                    "in.jsonl", 0, 1, None, bad, secret="abcdefghij"),
        dead_letter(Invalid("not_json", letters[1]["message"]), "in.jsonl", 0, 2, None,
                    b"{c000007", secret="abcdefghij")]
    assert [d["redaction"] for d in letters] == ["ids_pseudonymised", "payload_dropped"]
    kept = codec.loads(base64.b64decode(letters[0]["value_b64"]))
    assert kept["customer_id"] == pseudonymise("abcdefghij", "c000007")
    assert all(b"c000007" not in base64.b64decode(d["value_b64"]) for d in letters)
    for record in letters:
        assert_schema("dead-letter", record)


def test_cli_writes_changes_segments_and_dead_letters(
    tmp_path: Path, sim_lines: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ev.jsonl"
    src.write_bytes(b"\n".join([*sim_lines, b"not json"]) + b"\n")
    out, seg, dl = tmp_path / "ch.jsonl", tmp_path / "seg.jsonl", tmp_path / "dl.jsonl"
    rc = main(["replay", str(src), "--out", str(out), "--segments-out", str(seg),
               "--dead-letters", str(dl), "--quiet"])
    assert rc == 0
    expected = list(replay_lines(sim_lines, Settings()))
    assert [codec.loads(x) for x in out.read_bytes().splitlines()] == expected
    customers = {codec.loads(x)["customer_id"] for x in sim_lines}
    assert len(seg.read_bytes().splitlines()) == len(customers)
    [letter] = [codec.loads(x) for x in dl.read_bytes().splitlines()]
    assert (letter["reason"], letter["source"]["offset"]) == ("not_json", len(sim_lines) + 1)
    assert f"processed={len(sim_lines)}" in capsys.readouterr().err


def test_cli_bad_input_exits_2_with_file_line_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(buy("e1", "c1", "2026-01-01T00:00:00Z") + b"\n"
                    + line(event_id="e2", customer_id="c1", type="page_view", ts="soon") + b"\n")
    assert main(["replay", str(src), "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2: field ts: schema_invalid:" in err


def test_cli_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be opened: ``FILE: reason``, no line number (was ``FILE:0:``)."""
    missing = tmp_path / "nope.jsonl"
    assert main(["replay", str(missing), "--quiet"]) == 2
    assert main(["quality", str(missing)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"streamseg: error: {missing}: No such file or directory"] * 2


def test_bad_bytes_get_the_workers_reason() -> None:
    """Replay decodes through the Validator: the same reason codes as the worker."""
    settings = Settings(max_event_bytes=64)
    replayer, worker = Replayer(settings), Validator(settings)
    for raw in (b"{" + b"x" * 100, b"{not json", b"[1, 2]"):
        got = replayer.feed(raw)
        want = worker.check("click", None, raw)
        assert not isinstance(got, list) and not isinstance(want, Valid)
        assert (got.reason, got.message) == (want.reason, want.message)
    assert [replayer.feed(raw).reason for raw in (b"{" + b"x" * 100, b"{x")] == [  # type: ignore[union-attr]
        "too_large",
        "not_json",
    ]


def test_a_withdrawal_from_the_future_is_replayed_at_the_event_clock() -> None:
    """A withdrawal dated 2035 (a device clock) is applied at the event clock (Engine.admit),
    so replay re-scores the customers it moves in the population models there too: the
    changes equal those of the same withdrawal dated at the clock. Re-scored at its own
    time, a review found 297 extra moves (``active -> at_risk`` in 2024-06 of a simulation
    that ends in 2024-04) for 300 customers."""
    events = list(Simulation(SimConfig(customers=300, days=120, seed=7,
                                       start=1_704_067_200.0)).events())
    at = int(len(events) * 0.8)
    cid = [e["customer_id"] for e in events[:at] if e.get("order_id")][-1]
    clock = max(e["ts"] for e in events[:at])

    def changes(ts: str) -> list[tuple[Any, ...]]:
        withdrawal = {"customer_id": cid, "event_id": "w1", "type": "consent_withdrawn",
                      "ts": ts}
        lines = [codec.dumps(e) for e in (*events[:at], withdrawal, *events[at:])]
        return [(c["customer_id"], c.get("segmenter"), c.get("to_segment"), c["event_time"])
                for c in replay_lines(lines, Settings())]

    at_clock, future = changes(clock), changes("2035-06-01T00:00:00Z")
    assert len(at_clock) > 100 and any(c[0] == cid and c[1] is None for c in at_clock)
    assert future == at_clock
