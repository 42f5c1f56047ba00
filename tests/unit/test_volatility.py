"""``streamseg quality --rfm-daily``: the batch RFM definition's own day-to-day moves."""

from __future__ import annotations

import json

import pandas as pd

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import parse_ts
from streamseg.tools import volatility
from streamseg.tools.reference import customers, events_frame, frequency, rfm


def test_a_label_undone_the_next_day_is_a_flap_and_a_one_day_dwell_removes_it() -> None:
    ends = [DAY, 2 * DAY, 3 * DAY, 4 * DAY]
    table = pd.DataFrame([["a", "b", "a", "a"], [None, "a", "a", "c"], [None] * 4],
                         index=["x", "y", "never bought"], columns=ends)
    figures = volatility.measure_labels(table, Settings(), dwells=(0, 1))
    assert (figures["buyers"], figures["days"]) == (2, 4)
    got = {d["days"]: d for d in figures["dwell"]}
    # no dwell: x a->b, b->a (reverted); y a->c; agreement is the definition's
    assert (got[0]["changes"], got[0]["reverted"], got[0]["agree_mean_pct"]) == (3, 1, 100.0)
    # one day: x never leaves a (b held one day only), y's c waits one day more
    assert (got[1]["changes"], got[1]["reverted"]) == (0, 0)
    # agreement per day: day 1 1/1, day 2 x wrong 1/2, day 3 2/2, day 4 y wrong 1/2
    assert got[1]["agree_mean_pct"] == round((100 + 50 + 100 + 50) / 4, 2)
    assert (got[1]["agree_min_pct"], got[1]["agree_last_pct"]) == (50.0, 50.0)


def test_daily_labels_are_the_batch_reference_at_each_day_end_after_the_warm_up() -> None:
    s = Settings(rfm_warmup_days=2.0, rfm_min_samples=3)
    rows = [(c, "purchase", 0.5 * DAY, amount) for c, amount in (("a", 1.0), ("b", 2.0),
                                                                 ("c", 3.0))]
    rows += [("a", "purchase", 2.5 * DAY, 9.0), ("d", "page_view", 3.5 * DAY, 0.0),
             ("b", "purchase", 4.2 * DAY, 1.0)]
    history = events_frame(rows)
    assert volatility.day_ends(history, s) == [DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY]
    table = volatility.daily_labels(history, s)
    # warm once the purchases before the day end span 2 days: day ends 3, 4 and 5
    assert list(table.columns) == [3 * DAY, 4 * DAY, 5 * DAY]
    for end in table.columns:
        before = history[history["ts"] < end]
        expected = rfm(customers(before, end, s), True)["rfm"].dropna()
        assert table[end].dropna().to_dict() == expected.to_dict()
    assert "d" not in table.dropna(how="all").index  # never bought: no RFM label


def test_the_cli_prints_a_row_per_dwell(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streamseg.__main__ import main

    lines = [
        json.dumps({"type": "purchase", "customer_id": c, "event_id": f"e{i}",
                    "order_id": f"o{i}", "ts": f"2026-01-{day:02d}T10:00:00Z", "amount": i,
                    "currency": "EUR"})
        for i, (c, day) in enumerate([(c, d) for d in range(1, 29, 3) for c in "abcde"], 1)
    ]
    path = tmp_path / "ev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("STREAMSEG_RFM_WARMUP_DAYS", "7")
    monkeypatch.setenv("STREAMSEG_RFM_MIN_SAMPLES", "5")
    assert main(["quality", str(path), "--rfm-daily"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("RFM named segment, batch reference at each of ")
    assert [line.split()[0] for line in out[3:]] == [str(k) for k in volatility.DWELLS]
    # the definition has no hysteresis: asking to switch it off is a mistake (review 18)
    assert main(["quality", str(path), "--rfm-daily", "--no-hysteresis"]) == 2
    assert capsys.readouterr().err == (
        "streamseg quality: error: --rfm-daily measures the batch definition, which has no "
        "hysteresis: leave out --no-hysteresis\n")


def test_a_redelivery_counts_once_a_withdrawn_customer_is_left_out_and_bands_are_used() -> None:
    s = Settings(rfm_warmup_days=1.0, rfm_min_samples=3)
    lines = [json.dumps({"type": "purchase", "customer_id": c, "event_id": f"{c}{n}",
                         "order_id": f"{c}{n}", "ts": f"2026-01-0{d}T10:00:00Z",
                         "amount": 10.0, "currency": "EUR"}).encode()
             for c, n, d in (("a", 1, 1), ("b", 1, 1), ("c", 1, 1), ("a", 2, 3), ("a", 2, 3),
                             ("b", 2, 5))]
    lines.insert(5, json.dumps({"type": "consent_withdrawn", "customer_id": "c",
                                "event_id": "w1", "ts": "2026-01-04T12:00:00Z"}).encode())
    history, bad = volatility.read_history(lines, s)
    assert bad == 0 and len(history[history["type"] == "purchase"]) == 5  # a2 once
    table = volatility.daily_labels(history, s)
    last = table[table.columns[-1]]
    assert pd.isna(last["c"]) and not pd.isna(table[table.columns[0]]["c"])
    banded = volatility.daily_labels(history, Settings(rfm_warmup_days=1.0, rfm_min_samples=3,
                                                        rfm_recency="bands"))
    assert not banded.equals(table)  # R from fixed bands: a and b are both R5 there
    assert banded[banded.columns[-1]]["a"] == banded[banded.columns[-1]]["b"] == "new"


def test_daily_frequency_is_the_batch_tier_at_each_day_end_and_its_own_flap() -> None:
    # buying days 0.5 and 6.5: high (gap 6) until the open gap makes the tenure interval
    # 14.5 / 2 = 7.25 > 7 at the end of day 15 (medium); two purchases on days 15 and 16
    # bring the mean gap to 16 / 3 = 5.3 (high again at the end of day 17): the batch
    # definition itself moves high -> medium -> high within two days, a flap
    s = Settings()
    rows = [("a", "purchase", d * DAY, 5.0) for d in (0.5, 6.5, 15.5, 16.5)]
    rows += [("v", "page_view", 3.5 * DAY, 0.0)]  # never bought: no tier
    history = events_frame(rows)
    table = volatility.daily_frequency(history, s)
    assert list(table.columns) == [d * DAY for d in range(1, 18)]
    for end in table.columns:
        before = history[history["ts"] < end]
        c = customers(before, end, s)
        assert table[end].dropna().to_dict() == frequency(c, s)[c["purchases"] > 0].to_dict()
    assert table.loc["a"].tolist() == ["one_time"] * 6 + ["high"] * 8 + ["medium"] * 2 + ["high"]
    figures = volatility.measure(history, s, dwells=(0, 2), segmenter="frequency")
    assert (figures["segmenter"], figures["buyers"], figures["days"]) == ("frequency", 1, 17)
    got = {d["days"]: d for d in figures["dwell"]}
    assert (got[0]["changes"], got[0]["reverted"], got[0]["flap_pct"]) == (3, 1, 33.33)
    # a two-day dwell keeps high through the two medium days: one change, no flap
    assert (got[2]["changes"], got[2]["reverted"]) == (1, 0)
    assert volatility.render(figures).startswith(
        "Frequency tier, batch reference at each of 17 day ends, 1 buyers; flap = ")


def test_the_cli_freq_daily_prints_a_row_per_dwell(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from streamseg.__main__ import main

    lines = [json.dumps({"type": "purchase", "customer_id": "a", "event_id": f"e{d}",
                         "order_id": f"o{d}", "ts": f"2026-01-{d:02d}T10:00:00Z", "amount": 1,
                         "currency": "EUR"}) for d in (1, 7, 16, 17)]
    path = tmp_path / "ev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["quality", str(path), "--freq-daily"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Frequency tier, batch reference at each of 17 day ends, 1 buyers")
    assert [line.split()[0] for line in out[3:]] == [str(k) for k in volatility.DWELLS]
    assert main(["quality", str(path), "--freq-daily", "--rfm-daily"]) == 2
    assert main(["quality", str(path), "--freq-daily", "--no-hysteresis"]) == 2
    assert "--freq-daily measures the batch definition" in capsys.readouterr().err


def test_freq_daily_leaves_out_a_customer_while_withdrawn_or_erased() -> None:
    # the CLI's own reading (read_history): w buys on 1 and 3 January, withdraws on the
    # 4th at noon and grants again on the 7th at noon; e buys on the 1st and asks for
    # erasure on the 5th at noon; a buys on the 1st and 9th and never changes consent
    def buy(c: str, n: int, day: int) -> bytes:
        return json.dumps({"type": "purchase", "customer_id": c, "event_id": f"{c}{n}",
                           "order_id": f"{c}{n}", "ts": f"2026-01-{day:02d}T10:00:00Z",
                           "amount": 10.0, "currency": "EUR"}).encode()

    def record(c: str, kind: str, day: int) -> bytes:
        return json.dumps({"type": kind, "customer_id": c, "event_id": f"{c}-{kind}",
                           "ts": f"2026-01-{day:02d}T12:00:00Z"}).encode()

    s = Settings()
    lines = [buy("a", 1, 1), buy("w", 1, 1), buy("e", 1, 1), buy("w", 2, 3),
             record("w", "consent_withdrawn", 4), record("e", "erasure_requested", 5),
             record("w", "consent_granted", 7), buy("a", 2, 9)]
    history, bad = volatility.read_history(lines, s)
    assert bad == 0
    table = volatility.daily_frequency(history, s)
    # the ends of 1 .. 9 January (midnight UTC of the 2nd .. 10th)
    assert list(table.columns) == [parse_ts(f"2026-01-{d:02d}T00:00:00Z") for d in range(2, 11)]
    tiers = {c: [None if pd.isna(v) else v for v in table.loc[c]] for c in "awe"}
    # w: high from the second purchase day (gap 2 days); none at the ends of the 4th, 5th
    # and 6th (withdrawn), high again from the grant on with both purchases
    assert tiers["w"] == ["one_time", "one_time", "high", None, None, None,
                          "high", "high", "high"]
    # e: none from the end of the 5th (erased)
    assert tiers["e"] == ["one_time"] * 4 + [None] * 5
    # a, never withdrawn: one_time until the second purchase (gap 8 days: medium)
    assert tiers["a"] == ["one_time"] * 8 + ["medium"]


def test_rfm_daily_counts_a_flap_that_only_a_day_by_day_evaluation_sees(
        tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streamseg.__main__ import main

    # two buyers (rfm_min_samples 2): with N = 2 a score is 1 (the worse value or a tie)
    # or 1 + floor(5 / 2) = 3. a and b buy 10 EUR on 1 January; a again on the 2nd, b on
    # the 3rd, a on the 4th; a page view on the 6th ends the file. Day ends (midnight UTC)
    # from the end of the 1st to the end of the 6th; warm (purchases span 1 day) from the
    # end of the 2nd:
    #   end of 2nd: a R3 F3 M3 -> need_attention    b R1 F1 M1 -> lost
    #   end of 3rd: a R1 F1 M1 -> lost (F, M tied)  b R3 F1 M1 -> about_to_sleep
    #   end of 4th .. 6th: as at the end of the 2nd (a: 3 purchases, 30 EUR)
    # each customer moves and moves back the next day: 4 changes, 2 undone within 14 days
    lines = [json.dumps({"type": "purchase", "customer_id": c, "event_id": f"{c}{d}",
                         "order_id": f"{c}{d}", "ts": f"2026-01-{d:02d}T12:00:00Z",
                         "amount": 10.0, "currency": "EUR"})
             for c, d in (("a", 1), ("b", 1), ("a", 2), ("b", 3), ("a", 4))]
    lines.append(json.dumps({"type": "page_view", "customer_id": "b", "event_id": "v6",
                             "ts": "2026-01-06T12:00:00Z", "session_id": "s6"}))
    s = Settings(rfm_warmup_days=1.0, rfm_min_samples=2)
    history, bad = volatility.read_history([line.encode() for line in lines], s)
    assert bad == 0
    table = volatility.daily_labels(history, s)
    assert list(table.columns) == [parse_ts(f"2026-01-{d:02d}T00:00:00Z") for d in range(3, 8)]
    back = ["need_attention"] * 3
    assert table.loc["a"].tolist() == ["need_attention", "lost", *back]
    assert table.loc["b"].tolist() == ["lost", "about_to_sleep", "lost", "lost", "lost"]
    figures = volatility.measure(history, s, dwells=(0, 1))
    got = {d["days"]: (d["changes"], d["reverted"], d["flap_pct"]) for d in figures["dwell"]}
    # a one-day dwell publishes neither one-day move: no change at all
    assert got == {0: (4, 2, 50.0), 1: (0, 0, 0.0)}
    # the same figures through the command line
    path = tmp_path / "ev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("STREAMSEG_RFM_WARMUP_DAYS", "1")
    monkeypatch.setenv("STREAMSEG_RFM_MIN_SAMPLES", "2")
    assert main(["quality", str(path), "--rfm-daily", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert (cli["buyers"], cli["days"]) == (2, 5)
    assert [(d["days"], d["changes"], d["reverted"]) for d in cli["dwell"][:3]] == [
        (0, 4, 2), (1, 0, 0), (2, 0, 0)]


def test_a_withdrawal_from_far_ahead_is_taken_at_the_event_clock() -> None:
    """The engine applies a withdrawal dated 2150 at the event clock (``Engine.admit``); the
    daily history took it at 2150, so one purchase of 2026 gave 45,291 day ends to
    evaluate (review 31). It is at the clock now: the purchase's day and nothing after."""
    s = Settings()
    lines = [codec.dumps({"event_id": "e1", "customer_id": "c1", "order_id": "o1",
                          "amount": 5.0, "currency": "EUR", "ts": "2026-01-01T00:00:00Z"}),
             codec.dumps({"event_id": "w1", "customer_id": "c1", "type": "consent_withdrawn",
                          "ts": "2150-01-01T00:00:00Z"})]
    history, bad = volatility.read_history(lines, s)
    assert bad == 0 and len(history) == 2
    assert history["ts"].max() == parse_ts("2026-01-01T00:00:00Z")
    assert len(volatility.day_ends(history, s)) == 1


def test_a_withdrawal_from_far_ahead_before_any_event_is_from_the_start() -> None:
    """The same withdrawal read before any event: the engine has no event clock yet and
    takes it at the wall clock, which gave a 2011 history day ends up to today (review 31).
    It is from the start of the history here: the customer is out of every day."""
    s = Settings()
    lines = [codec.dumps({"event_id": "w1", "customer_id": "c0", "type": "consent_withdrawn",
                          "ts": "2150-01-01T00:00:00Z"}),
             codec.dumps({"event_id": "e1", "customer_id": "c1", "order_id": "o1",
                          "amount": 5.0, "currency": "EUR", "ts": "2011-01-01T00:00:00Z"})]
    history, bad = volatility.read_history(lines, s)
    assert bad == 0 and history["ts"].max() == parse_ts("2011-01-01T00:00:00Z")
    assert len(volatility.day_ends(history, s)) == 1
