"""Consent by event time, a third review (33c) of the fold and the applied time: its tests
(the reset-clock erasure under default lateness; the fold on a copy marker; segment gauges;
the daily reference judging grants as the engine does)."""
from __future__ import annotations

from unit.test_edge_batch import buy, consent, harness, metric

from streamseg.config import Settings
from streamseg.replay import Replayer
from streamseg.tools import volatility


def test_the_daily_reference_skips_a_grant_the_engine_skips_by_applied_time() -> None:
    # a withdrawal dated day 2 read when the clock is at day 20: applied at ~day 20 in the
    # engine (b1d4688), so a grant dated day 5 is stale there; the reference judges by date
    s = Settings()
    lines = [buy("e1", "c1", 0.0), buy("e2", "c2", 20.0),
             consent("w1", "c1", "consent_withdrawn", 2.0),
             consent("g1", "c1", "consent_granted", 5.0), buy("e3", "c2", 26.0)]
    r = Replayer(s)
    for line in lines:
        r.feed(line)
    assert r.states["c1"].withdrawn  # the engine skipped the grant
    history, _ = volatility.read_history(lines, s)
    table = volatility.daily_frequency(history, s)
    last = table.columns[-1]
    assert table.loc["c1", last] != table.loc["c1", last], table.loc["c1", last]


def test_segment_gauges_follow_a_folded_input() -> None:
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=0)  # made before, read after
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 2, state
        for name, seg in state["segments"].items():
            assert metric(h, "streamseg_segment_customers", segmenter=name,
                          segment=seg[0]) == 1.0, (name, seg[0])
    finally:
        h.close()


def test_segment_gauges_never_go_negative_after_the_regrant() -> None:
    from unit.test_consent_copies import deliver_copies
    h, _ = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=0)  # folded, unpublished
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 200.0), partition=0)
        deliver_copies(h)
        samples = [(s.labels, s.value) for m in h.registry.collect()
                   if m.name == "streamseg_segment_customers" for s in m.samples]
        assert all(v >= 0 for _, v in samples), [x for x in samples if x[1] != 0]
    finally:
        h.close()


def test_a_folded_input_on_a_copy_marker_makes_a_profile_the_lookup_sees() -> None:
    # two producer partitioners: c1's profile and consent on 0; the withdrawal's copy leaves
    # a marker on 1; a purchase made before the withdrawal arrives on 1 after it (folded)
    from unit.test_consent_copies import deliver_copies

    from streamseg import codec
    from streamseg.lookupstate import held
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=0)
        deliver_copies(h)
        h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=1)
        state = table.state(1, "c1")
        assert state is not None and state["purchases"] == 1 and state["segments"]
        assert held([(1, codec.dumps(state))], routed=1) is not None, state.get("_copy")
    finally:
        h.close()


import pytest  # noqa: E402

from streamseg.config import DAY  # noqa: E402


@pytest.mark.parametrize("settings", [
    # the unit CFG with the default allowed lateness (1 h) instead of 0
    Settings(max_future_skew_s=7 * DAY, allowed_lateness_s=3600.0, partitions=4,
             source_idle_s=0.0),
    Settings(partitions=4),  # the defaults: lateness 1 h, source idle 5 s
], ids=["default_lateness", "defaults"])
def test_a_reset_clock_erasure_does_not_revive_with_the_default_lateness(
    settings: Settings,
) -> None:
    # b1d4688's case (test_consent_copies ... reset_clock_in_window) with the default
    # settings: the batch's look trails the clock by the allowed lateness (and is capped
    # at the slowest source), so the erasure counts from before the grant and the grant's
    # copy, read late on partition 1, revives the customer there
    from unit.test_consent_copies import deliver, deliver_copies, take_copies

    from streamseg import codec
    h, table = harness(settings)
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0), partition=1)
        deliver_copies(h)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        grant_copies = take_copies(h)
        h.send("consent", b"c1", codec.dumps({"event_id": "x2", "customer_id": "c1",
               "type": "erasure_requested", "ts": "1970-01-01T00:00:00Z"}), partition=1)
        erasure_copies = take_copies(h)
        deliver(h, grant_copies)  # late: partition 1 has applied the second erasure
        deliver(h, erasure_copies)
        for p in range(4):
            state = table.state(p, "c1")
            assert state is not None and state["withdrawn"] and state["erased"], (
                p, {k: state[k] for k in ("withdrawn", "erased", "epoch", "consent_log")})
        changes = len(h.app.changes.sent)
        h.send("purchase", b"c1", buy("e2", "c1", 4.0), partition=1)
        assert len(h.app.changes.sent) == changes
    finally:
        h.close()
