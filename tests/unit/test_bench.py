"""``streamseg bench`` pieces that need no broker, and its error without one."""

from __future__ import annotations

import socket

import pytest

from streamseg.__main__ import main
from streamseg.bench import WELL_SEPARATED, Sizes, adjusted_rand, bench_ari, bench_replay

TINY = Sizes(replay_customers=20, replay_days=20.0, ari_customers=60, ari_days=60.0)


def test_adjusted_rand_is_label_permutation_invariant() -> None:
    truth = ["a", "a", "b", "b", "c", "c"]
    assert adjusted_rand(truth, ["z", "z", "x", "x", "y", "y"]) == 1.0
    assert adjusted_rand(truth, ["q"] * 6) == 0.0


def test_replay_and_ari_parts_run_on_small_sizes() -> None:
    r = bench_replay(TINY, seed=1)
    assert r["events"] > 100 and r["events_per_s"] > 0
    a = bench_ari(TINY, seed=1)
    assert a["personas"] == len(WELL_SEPARATED) and a["k"] == len(WELL_SEPARATED)
    assert -1.0 <= a["ari"] <= 1.0 and -1.0 <= a["ari_final"] <= 1.0
    assert 0 < a["customers"] <= 60


def test_bench_without_a_broker_exits_2_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("STREAMSEG_BROKER", f"kafka://127.0.0.1:{port}")
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert f"no Kafka broker reachable at 127.0.0.1:{port}" in err
