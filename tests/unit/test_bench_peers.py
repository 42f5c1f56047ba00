"""``streamseg bench --peers`` and ``--replay``: the parts that need no broker.

The minimal job must give the same outputs behind every system's state API
(dict store, Quix Streams ``State``, Bytewax ``stateful_map``), or the peers
would not be running the same job.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamseg import codec
from streamseg.bench import compare, job, replayspeed
from streamseg.bench.core import lines_of
from streamseg.bench.peers import Progress
from streamseg.simulate import SimConfig


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return lines_of(SimConfig(60, 120.0, 3))


def purchase(cid: str, day: int) -> bytes:
    return codec.dumps({"customer_id": cid, "type": "purchase",
                        "ts": f"2026-01-{day:02d}T00:00:00Z"})


def test_tiers_follow_the_mean_interval_and_emit_only_on_a_change() -> None:
    raw = [purchase("a", 1), purchase("a", 2), purchase("a", 3), purchase("b", 1),
           purchase("a", 31), purchase("b", 25)]
    outs = [codec.loads(o) for o in job.reference(raw)]
    assert [(o["customer_id"], o["from"], o["tier"], o["purchases"]) for o in outs] == [
        ("a", None, "one_time", 1), ("a", "one_time", "high", 2),  # 3rd: still high, silent
        ("b", None, "one_time", 1), ("a", "high", "medium", 4),  # 30 days / 3 = 10 days
        ("b", "one_time", "medium", 2)]  # 24 days
    assert outs[3]["mean_interval_days"] == 10.0


class FakeQuixState:
    """Quix Streams' per-key ``State`` (get/set), backed by a dict."""

    def __init__(self, store: dict[Any, Any]) -> None:
        self.store = store

    def get(self, key: Any, default: Any = None) -> Any:
        return self.store.get(key, default)

    def set(self, key: Any, value: Any) -> None:
        self.store[key] = value


def test_every_adapter_gives_the_reference_outputs(lines: list[bytes]) -> None:
    ref = job.reference(lines)
    assert len(ref) > 50  # the sample really exercises the job
    quix: defaultdict[str, dict[Any, Any]] = defaultdict(dict)
    bytewax: dict[str, Any] = {}
    table: dict[str, job.JobState] = {}
    got_quix, got_bytewax, got_table = [], [], []
    for raw in lines:
        key = codec.loads(raw)["customer_id"]
        got_quix.append(job.on_quix_state(raw, FakeQuixState(quix[key])))
        bytewax[key], out = job.on_bytewax(bytewax.get(key), raw)
        got_bytewax.append(out)
        got_table.append(job.on_mapping(table, raw))
    for got in (got_quix, got_bytewax, got_table):
        assert [o for o in got if o is not None] == ref


def test_order_across_customers_does_not_change_outputs(lines: list[bytes]) -> None:
    # peers read partitions in any interleaving; per customer the order is kept
    by_customer: defaultdict[str, list[bytes]] = defaultdict(list)
    for raw in lines:
        by_customer[codec.loads(raw)["customer_id"]].append(raw)
    regrouped = [raw for cid in sorted(by_customer, reverse=True) for raw in by_customer[cid]]
    assert sorted(job.reference(regrouped)) == sorted(job.reference(lines))


def test_progress_reports_once_at_the_expected_count(capfd: pytest.CaptureFixture[str]) -> None:
    done: list[int] = []
    p = Progress(3, lambda: done.append(1))
    for out in (None, b"x", None):
        p.tick(out)
    printed = capfd.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].startswith("BENCH ")
    result = codec.loads(printed[0][6:])
    assert result["events"] == 3 and result["outputs"] == 1 and result["seconds"] >= 0
    assert done == [1]


def test_summary_gives_medians_ratios_and_flags_wrong_output_counts() -> None:
    result = {"events": 1000, "rounds": 3, "reference_outputs": 7, "runs": {
        compare.WORKER: [{"events_per_s": v} for v in (100.0, 300.0, 200.0)],
        "quix": [{"events_per_s": v, "outputs": 7} for v in (1000.0, 800.0, 900.0)],
        "bytewax": [{"events_per_s": 400.0, "outputs": 6}]}}
    text = compare.summary(result)
    worker, quix, bytewax = text[1], text[2], text[3]
    assert "200 events/s (median" in worker
    assert "900 events/s" in quix and "worker/quix = 22.2%" in quix and "MISMATCH" not in quix
    assert "outputs 6 MISMATCH" in bytewax and "worker/bytewax = 50.0%" in bytewax


def test_events_for_gives_exactly_n_events() -> None:
    assert len(compare.events_for(500, seed=2)) == 500


def test_replay_vs_decode_on_an_events_file(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines[:2000]) + b"\n")
    r = replayspeed.replay_vs_decode(path, repeat=1)
    assert r["events"] == 2000 and r["changes"] > 0
    # decoding alone is a floor the replay cannot beat
    assert 0 < r["ratio"] < 1
    assert r["ratio"] == pytest.approx(r["replay_events_per_s"] / r["decode_events_per_s"])
    assert 0 < r["ratio_cpu"] < 1  # the same on CPU time, which other busy processes do not skew
    assert r["ratio_cpu"] == pytest.approx(
        r["replay_events_per_s_cpu"] / r["decode_events_per_s_cpu"])
    assert "replay/decode" in replayspeed.summary(path, r)[-1]
    assert r["dead_letters"] == 0


def test_replay_vs_decode_counts_bad_lines_and_goes_on(tmp_path: Path, lines: list[bytes]) -> None:
    """The bundled sample has a bad line (110): ``bench --replay`` on it stopped with
    ``<input>:110: field ts``, naming no file."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([*lines[:50], b"{not json", b'{"ts": 1}', *lines[50:100]]))
    r = replayspeed.replay_vs_decode(path, repeat=1)
    assert (r["events"], r["dead_letters"]) == (102, 2) and r["changes"] > 0
    assert "102 events" in replayspeed.summary(path, r)[0]
    assert "2 dead letters" in replayspeed.summary(path, r)[0]


def test_a_worker_variant_runs_the_tree_its_pythonpath_names(tmp_path: Path) -> None:
    """``--variant "issue-time:PYTHONPATH=<tree>"`` runs that tree's worker, even when the
    bench is started from a source checkout (``python -m`` puts the working directory
    first on ``sys.path``; the worker runs with ``python -P``)."""
    import subprocess

    from streamseg.bench.broker import Worker
    from streamseg.config import Settings

    tree = tmp_path / "tree" / "streamseg"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("")
    (tree / "__main__.py").write_text("import sys; print('other tree:', sys.argv[1:])\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    worker = Worker(Settings(), logs / "w.log", {"PYTHONPATH": str(tree.parent)})
    try:
        worker.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:  # this checkout's real worker started instead
        worker.stop()
    assert "other tree: ['worker']" in (logs / "w.log").read_text()
