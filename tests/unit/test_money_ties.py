"""Equal spends tie exactly, whatever the order of the purchases (review 18).

Summed in binary, ``0.1 + 0.2 + 0.3`` is ``0.6000000000000001`` and ``0.3 + 0.2 + 0.1``
is ``0.6``: on Instacart five households that each spent 564 USD were split across
the 2/3 M cut by the last bit, and the batch reference split them the other way.
"""

from __future__ import annotations

import pandas as pd

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine
from streamseg.tools import reference

CFG = Settings(rfm_warmup_days=0.0, rfm_min_samples=1, rfm_hold_margin=0.0, rfm_hold_days=0.0)
ORDERS = ([0.1, 0.2, 0.3], [0.3, 0.2, 0.1])


def history() -> list[Event]:
    """24 customers, each spending 0.60 in three purchases, half of them the other way round,
    and one customer who spends 0.61 (the only one above the tie)."""
    out = []
    for i in range(25):
        amounts = [0.2, 0.2, 0.21] if i == 24 else ORDERS[i % 2]
        for k, amount in enumerate(amounts):
            out.append(Event("purchase", "purchase", f"o{i}-{k}", f"c{i:02d}",
                             (2 * i + 60 * k) * DAY, amount=amount))
    return sorted(out, key=lambda e: e.ts)


def test_equal_spends_tie_in_the_engine_and_in_the_batch_reference() -> None:
    eng = Engine(CFG)
    states = {}
    for ev in history():
        states[ev.customer_id] = eng.apply(states.get(ev.customer_id), ev).state
    assert {s.monetary for cid, s in states.items() if cid != "c24"} == {0.6}
    rfm = eng.segmenter("rfm")
    now = max(s.last_seen for s in states.values())
    m = {cid: rfm.scores(s, now)[2] for cid, s in states.items()}  # type: ignore[attr-defined]
    assert set(m.values()) == {1, 5} and m["c24"] == 5  # the tie shares the lowest score
    rows = [(e.customer_id, "purchase", e.ts, e.amount) for e in history()]
    frame = reference.events_frame(rows)
    c = reference.customers(frame, now, CFG)
    assert c["total"].drop("c24").nunique() == 1
    ref = reference.rfm(c, True)["m"]
    assert pd.Series(m).sort_index().tolist() == ref.sort_index().astype(int).tolist()
