"""Why a cluster model version moves many customers at once (analysis, no broker).

``python scripts/clustermoves.py EVENTS.jsonl [--top N]`` replays the events with the
cluster segmenter alone (as ``streamseg.clusterquality``) and prints, per model
version that moved customers (trigger ``population``): whether the refit was a
k-means++ reseed, each id's centroid shift (z units) and name, the active features,
the moves by (from -> to) names, and how far the moved customers were past the
border under the previous version's scale (median / p90 of ``Assigner.past``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from streamseg.clusterquality import Recorder
from streamseg.config import Settings
from streamseg.engine.clusterassign import Assigner
from streamseg.engine.clusterfeatures import recency
from streamseg.engine.model import ClusterModel
from streamseg.engine.processor import Engine
from streamseg.replay import Replayer


class Tracer(Recorder):
    """Also remembers, per version, whether the refit was a reseed and the moved
    customers' scaled distance past the border they crossed."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.reseed: dict[int, bool] = {}
        self.at: dict[int, float] = {}
        self.before: dict[int, dict[str, tuple[str | None, list[float]]]] = {}

    def refit(self, now: float) -> ClusterModel | None:
        lazy = self.refits % 10 != 0
        m = super().refit(now)
        if m is not None:
            self.reseed[m.version] = not lazy
        return m

    def _use(self, model: ClusterModel, now: float) -> None:
        self.at[model.version] = now
        snap = {}
        for cid, e in self.local.items():
            snap[cid] = (e[2], [*e[0], recency(e[1], now, self.grace)])
        self.before[model.version] = snap
        super()._use(model, now)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--top", type=int, default=6)
    args = ap.parse_args(argv)
    cfg = Settings.from_env()
    seg = Tracer(cfg)
    eng = Engine(cfg, [seg])
    rep = Replayer(cfg, engine=eng)
    changes: list[dict[str, Any]] = []
    with args.file.open("rb") as fh:
        for line in fh:
            fed = rep.feed(line.strip())
            if isinstance(fed, list):
                changes += fed
            moved = eng.moved()
            now = rep.clock.now()
            if now is None:
                continue
            for cid in moved:
                state = rep.states.get(cid)
                if state is not None:
                    changes += rep._settle(cid, eng.rescore(state, now), now, tick=True)
    mine = [c for c in changes if c["segmenter"] == "cluster"]
    pop = [c for c in mine if c.get("trigger") == "population"]
    by_v: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in pop:
        by_v[c["model_version"]].append(c)
    labelled = sum(1 for s in rep.states.values() if "cluster" in s.segments)
    print(f"{args.file.name}: {len(mine)} cluster changes, {len(pop)} population, "
          f"{len(seg.history)} versions, {labelled} labelled, refits {seg.refits}")
    sizes = sorted(((len(v), k) for k, v in by_v.items()), reverse=True)
    print("largest versions:", [(k, n) for n, k in sizes[:10]])
    hist = seg.history
    for n, v in sizes[: args.top]:
        m, p = hist[v], hist.get(v - 1)
        print(f"\n== version {v}: {n} moved; reseed={seg.reseed.get(v)}; active={m.active}")
        if p is not None:
            a_new = Assigner(m)
            for s in sorted(set(m.published()) | set(p.published())):
                if s in m.centers and s in p.centers:
                    d = math.dist(m.centers[s], a_new.scale(p.raw(p.centers[s])))
                    print(f"  {s}: shift {d:.2f}  {m.description(s)!r}  share "
                          f"{p.shares.get(s, 0):.3f}->{m.shares.get(s, 0):.3f}  z="
                          + " ".join(f"{f[:4]}{x:+.2f}" for f, x in
                                     zip(list(m.means), m.centers[s], strict=False)
                                     if f in m.active))
                elif s in m.centers:
                    print(f"  {s}: NEW {m.description(s)!r} share {m.shares.get(s, 0):.3f}")
                else:
                    print(f"  {s}: GONE {p.description(s)!r} share {p.shares.get(s, 0):.3f}")
            print("  scaler means:", {f: round(m.means[f] - p.means[f], 3) for f in m.active},
                  "std ratio:", {f: round(math.sqrt(m.variances[f] / p.variances[f]), 3)
                                 for f in m.active if p.variances[f] > 0})
            # how far past the border (new model) the moved customers are, and under the old
            a_old = Assigner(p)
            pasts, olds = [], []
            snap = seg.before[v]
            for c in by_v[v]:
                e = snap.get(c["customer_id"])
                if e is None or e[0] is None:
                    continue
                z = a_new.scale(e[1])
                if e[0] in m.centers:
                    pasts.append(a_new.past(z, e[0], c["to_segment"]))
                zo = a_old.scale(e[1])
                if e[0] in p.centers and c["to_segment"] in p.centers:
                    olds.append(a_old.past(zo, e[0], c["to_segment"]))
            if pasts:
                q = statistics.quantiles(pasts, n=10)
                print(f"  past border (new model): n={len(pasts)} p10 {q[0]:.2f} "
                      f"p50 {statistics.median(pasts):.2f} p90 {q[-1]:.2f}")
            if olds:
                print("  same customers under previous model: p50 past "
                      f"{statistics.median(olds):.2f} (negative: inside their old cluster)")
        flows = Counter((c["from_segment"], c["to_segment"]) for c in by_v[v])
        for (a, b), k in flows.most_common(5):
            na = hist[v].description(a) if a in hist[v].centers else (
                p.description(a) if p and a in p.centers else a)
            print(f"  {k:4d} {a} {na!r} -> {b} {hist[v].description(b)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
