"""Delivery setting: at-least-once only; ``exactly_once`` is refused with the reason."""

from __future__ import annotations

import pytest

from streamseg.__main__ import main
from streamseg.config import EXACTLY_ONCE_UNSUPPORTED, Settings
from streamseg.errors import ConfigError


def test_exactly_once_is_rejected_with_the_reason() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"STREAMSEG_PROCESSING_GUARANTEE": "exactly_once"})
    assert str(err.value) == EXACTLY_ONCE_UNSUPPORTED
    assert "\n" not in EXACTLY_ONCE_UNSUPPORTED
    assert "outside its Kafka transactions" in EXACTLY_ONCE_UNSUPPORTED
    assert "change_id" in EXACTLY_ONCE_UNSUPPORTED


def test_at_least_once_is_the_default_and_other_values_are_refused() -> None:
    assert Settings.from_env({}).processing_guarantee == "at_least_once"
    assert Settings.from_env(
        {"STREAMSEG_PROCESSING_GUARANTEE": "at_least_once"}).processing_guarantee == "at_least_once"
    with pytest.raises(ConfigError, match="expected at_least_once, got 'at_most_once'"):
        Settings.from_env({"STREAMSEG_PROCESSING_GUARANTEE": "at_most_once"})


def test_the_worker_refuses_to_start_with_exactly_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMSEG_PROCESSING_GUARANTEE", "exactly_once")
    assert main(["worker"]) == 2
    assert capsys.readouterr().err.strip() == f"streamseg: error: {EXACTLY_ONCE_UNSUPPORTED}"
