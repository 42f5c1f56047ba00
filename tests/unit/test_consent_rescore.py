"""Consent rules that no other unit test pinned down (review 16: targeted mutation testing).

Fails on the mutant of ``streamseg/engine/consent.py`` that drops ``engine.queue`` at a
grant, and passes on the engine as it is.
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.outcome import Outcome
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters import RFMSegmenter


def test_a_grant_rescores_the_labels_the_population_moved_while_the_customer_was_out() -> None:
    """While c9's consent is withdrawn, the other nine buy again and c9's recency rank falls
    from R4 to R1. The grant puts c9 back into the population and names it for the next
    re-score (``Engine.queue``): ``potential_loyalist -> at_risk`` (trigger ``population``).
    A population move names the customers a cut crossed, never the one who came back, so
    without the queue c9 kept ``potential_loyalist`` until its own next purchase."""
    cfg = Settings(rfm_warmup_days=1, rfm_min_samples=5, rfm_hold_margin=0.0)
    eng = Engine(cfg, [RFMSegmenter(cfg)])
    states: dict[str, CustomerState] = {}

    def apply(ev: Event) -> Outcome:
        out = eng.apply(states.get(ev.customer_id), ev)
        assert out.state is not None
        states[ev.customer_id] = out.state
        return out

    for i in range(10):
        apply(Event("purchase", "purchase", f"c{i}-a", f"c{i}", i * DAY, amount=10.0 * (i + 1)))
    for cid in eng.moved():
        eng.rescore(states[cid], 10 * DAY)
    assert states["c9"].segments["rfm"][0] == "potential_loyalist"
    apply(Event("consent", "consent_withdrawn", "w1", "c9", 11 * DAY))
    for i in range(9):
        apply(Event("purchase", "purchase", f"c{i}-b", f"c{i}", (20 + i) * DAY, amount=10.0))
    assert "c9" not in eng.moved()  # out of the models
    grant = apply(Event("consent", "consent_granted", "g1", "c9", 30 * DAY))
    assert grant.changes == []
    assert "c9" in eng.moved()
    out = eng.rescore(states["c9"], 30 * DAY)
    assert [(c["from_segment"], c["to_segment"], c["trigger"]) for c in out.changes] == [
        ("potential_loyalist", "at_risk", "population")]
