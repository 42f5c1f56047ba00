"""Property: the engine's buying days and frequency tier equal the pandas reference's.

Random purchase histories (same-day bursts, baskets either side of a day boundary,
long gaps), a random day start, and purchases delivered slightly out of order (one
purchase may arrive after the next one): ``purchase_days`` equals the reference's
``nunique`` of buying days and the ``frequency`` verdict equals the reference's at a
later clock.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamseg.config import DAY, Settings
from streamseg.engine.buyingdays import HOUR, buying_day
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState, update
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.tools.reference import customers, events_frame, frequency

# gaps between purchases: minutes (same basket run), hours (either side of midnight), days
GAPS = st.one_of(st.floats(0, 2 * HOUR), st.floats(2 * HOUR, 30 * HOUR),
                 st.floats(1 * DAY, 40 * DAY))


@settings(max_examples=300, deadline=None)
@given(first=st.floats(100 * DAY, 101 * DAY), gaps=st.lists(GAPS, min_size=0, max_size=12),
       start_h=st.sampled_from([0.0, 9.0, 17.5]), swaps=st.lists(st.booleans(), max_size=12),
       later=st.floats(0, 200 * DAY))
def test_buying_days_and_tier_equal_the_reference(
    first: float, gaps: list[float], start_h: float, swaps: list[bool], later: float
) -> None:
    times = [first]
    for g in gaps:
        times.append(times[-1] + g)
    order = list(times)
    for i, swap in enumerate(swaps[: len(order) - 1]):  # one purchase arrives after the next
        if swap:
            order[i], order[i + 1] = order[i + 1], order[i]
    cfg = Settings(buying_day_start_h=start_h)
    state = CustomerState.new("c", order[0])
    for i, t in enumerate(order):
        update(state, Event("purchase", "purchase", f"e{i}", "c", t, amount=1.0), cfg)
    assert state.purchase_days == len({buying_day(t, start_h * HOUR) for t in times})
    now = max(times) + later
    c = customers(events_frame([("c", "purchase", t, 1.0) for t in times]), now, cfg)
    got = FrequencySegmenter(cfg).assign(state, now)
    assert got is not None and got.segment == frequency(c, cfg)["c"]


def test_a_day_start_is_the_same_as_shifting_every_event_time() -> None:
    """Frequency and predicted value with days starting at 07:30 UTC, over events all
    7.5 hours later, publish exactly the changes of UTC days over the original events
    (event times 7.5 hours later): buying days, BG/NBD day numbers, refit instants and
    due times all follow the day start."""
    from streamseg import codec
    from streamseg.engine.events import format_ts, parse_ts
    from streamseg.engine.processor import Engine
    from streamseg.engine.segmenters.value import ValueSegmenter
    from streamseg.replay import Replayer
    from streamseg.simulate import SimConfig, Simulation

    shift = 7.5 * HOUR
    events = list(Simulation(SimConfig(customers=300, days=130, seed=3)).events())

    def run(start_h: float, by: float) -> list[tuple[object, ...]]:
        cfg = Settings(buying_day_start_h=start_h)
        rep = Replayer(cfg, Engine(cfg, [FrequencySegmenter(cfg), ValueSegmenter(cfg)]))
        out = []
        for ev in events:
            got = rep.feed(codec.dumps({**ev, "ts": format_ts(parse_ts(ev["ts"]) + by)}))
            assert isinstance(got, list)
            out += [(c["customer_id"], c["segmenter"], c["from_segment"], c["to_segment"],
                     c["trigger"], c["model_version"], parse_ts(c["event_time"]) - by)
                    for c in got]
        return out

    plain = run(0.0, 0.0)
    assert sum(1 for c in plain if c[1] == "value") > 100  # the value model did fit
    assert run(7.5, shift) == plain
