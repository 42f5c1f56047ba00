"""An input made before a withdrawal and read after it is folded into the withdrawn
profile, unpublished (streamseg.engine.consentlog.kept): on the real Ingest glue, its
segment gauges and a consent copy's marker (review 33c)."""
from __future__ import annotations

from unit.test_edge_batch import buy, consent, harness, metric


def test_segment_gauges_follow_a_folded_input_and_never_go_negative() -> None:
    from unit.test_consent_copies import deliver_copies

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
