"""Opt-in: the BG/NBD fit against the ``lifetimes`` package (an independent implementation).

Needs ``scripts/fetch-data`` (fills ``.cache/data/``) and the ``reference`` extra
(``lifetimes==0.11.3``; installed with ``pip install --no-deps`` next to our pinned
pandas and numpy, plus ``autograd`` and ``dill``); skips cleanly otherwise.

* Complete Journey: the imported events are replayed through the engine's
  ``value`` segmenter; its per-customer (x, t_x, T) equal lifetimes'
  ``summary_data_from_transaction_data(freq="D")`` of the raw transactions, and the
  parameters refitted on the stream's population at the end are within 5% of
  ``BetaGeoFitter`` on that summary.
* CDNOW: lifetimes' own summary (weeks) and the full transaction log (days): the
  fits agree within 5%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine import bgnbd, bgnbdfit
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.value import ValueSegmenter
from streamseg.engine.valuemodel import key_of
from streamseg.replay import Replayer, replay_lines

DATA = Path(__file__).resolve().parents[2] / ".cache" / "data"
CJ = DATA / "transactions.parquet"
CDNOW = DATA / "CDNOW_master.txt"
TOLERANCE = 0.05


def _lifetimes() -> Any:
    pytest.importorskip("autograd")
    return pytest.importorskip("lifetimes")


def _close(ours: bgnbd.Params, ref: Any) -> None:
    theirs = bgnbd.Params(*(float(ref[k]) for k in ("r", "alpha", "a", "b")))
    print(f"ours {ours}\nlifetimes {theirs}")
    for mine, other, name in zip(ours, theirs, bgnbd.Params._fields, strict=True):
        assert abs(mine - other) <= TOLERANCE * abs(other), (name, ours, theirs)


def test_complete_journey_stream_fit_matches_lifetimes(tmp_path: Path) -> None:
    if not CJ.exists():
        pytest.skip("no .cache/data/transactions.parquet (run scripts/fetch-data)")
    lifetimes = _lifetimes()
    pd = pytest.importorskip("pandas")
    from lifetimes.utils import summary_data_from_transaction_data

    events = tmp_path / "cj.jsonl"
    assert main(["import", str(CJ), "--customer", "household_id", "--time",
                 "transaction_timestamp", "--amount", "sales_value", "--order", "basket_id",
                 "--currency", "USD", "--channel", "store", "--out", str(events)]) == 0
    cfg = Settings()
    seg = ValueSegmenter(cfg)
    rep = Replayer(cfg, Engine(cfg, [seg]))
    changes = sum(1 for _ in replay_lines(events.read_bytes().splitlines(), cfg, replayer=rep))
    assert changes > 0 and seg.version is not None and seg.version > 1
    end = max(s.last_seen for s in rep.states.values())

    tx = pd.read_parquet(CJ, columns=["household_id", "transaction_timestamp"])
    summary = summary_data_from_transaction_data(tx, "household_id", "transaction_timestamp",
                                                 freq="D")
    # the stream's per-customer quantities are lifetimes' (distinct days, whole days)
    ours = {}
    for cid, state in rep.states.items():
        x, t_x, first = key_of(state)
        ours[int(cid)] = (x, t_x, end // DAY - first)
    theirs = {int(h): (float(r["frequency"]), float(r["recency"]), float(r["T"]))
              for h, r in summary.iterrows()}
    assert ours == theirs

    model = seg.refit(end)
    assert model is not None and model.customers == len(summary)
    ref = lifetimes.BetaGeoFitter().fit(summary["frequency"], summary["recency"],
                                       summary["T"]).params_
    _close(model.params, ref)


def test_cdnow_fits_match_lifetimes() -> None:
    lifetimes = _lifetimes()
    pd = pytest.importorskip("pandas")
    from lifetimes.datasets import load_cdnow_summary
    from lifetimes.utils import summary_data_from_transaction_data

    weeks = load_cdnow_summary(index_col=[0])
    ref = lifetimes.BetaGeoFitter().fit(weeks["frequency"], weeks["recency"], weeks["T"])
    _close(bgnbdfit.fit(weeks["frequency"], weeks["recency"], weeks["T"]), ref.params_)
    if not CDNOW.exists():
        pytest.skip("no .cache/data/CDNOW_master.txt (run scripts/fetch-data)")
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype={"date": str, "customer_id": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    days = summary_data_from_transaction_data(raw, "customer_id", "date", freq="D")
    ref = lifetimes.BetaGeoFitter().fit(days["frequency"], days["recency"], days["T"])
    _close(bgnbdfit.fit(days["frequency"], days["recency"], days["T"]), ref.params_)
