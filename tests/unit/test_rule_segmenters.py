"""Frequency tiers and lifecycle stages: exact verdicts at chosen event times."""

from __future__ import annotations

import pytest

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter


def buyer(purchases: int, first: float, last: float, gap: float | None) -> CustomerState:
    s = CustomerState.new("c", first)
    s.purchases, s.first_purchase, s.last_purchase, s.gap_days = purchases, first, last, gap
    s.last_seen = last
    return s


@pytest.mark.parametrize(
    ("gap", "since_days", "expected"),
    [
        (3.0, 1.0, "high"),
        (7.0, 7.0, "high"),
        (7.5, 1.0, "medium"),
        (3.0, 8.0, "medium"),
        (28.0, 0.0, "medium"),
        (29.0, 0.0, "low"),
        (90.0, 10.0, "low"),
        (3.0, 180.0, "low"),
        (3.0, 180.5, "lapsed"),
    ],
)
def test_frequency_tiers(gap: float, since_days: float, expected: str) -> None:
    seg = FrequencySegmenter(Settings())
    verdict = seg.assign(buyer(4, 0.0, 10 * DAY, gap), (10 + since_days) * DAY)
    assert verdict is not None and verdict.segment == expected


def test_frequency_prospect_and_single_purchase() -> None:
    seg = FrequencySegmenter(Settings())
    prospect = seg.assign(CustomerState.new("c", 0.0), 0.0)
    assert prospect is not None and prospect.segment == "prospect"
    one = seg.assign(buyer(1, 0.0, 0.0, None), 2 * DAY)
    assert one is not None and (one.segment, one.reason) == ("low", "one purchase so far")


def test_frequency_thresholds_come_from_settings() -> None:
    seg = FrequencySegmenter(Settings(freq_high_max_days=2, freq_medium_max_days=5, lapsed_days=30))
    s = buyer(3, 0.0, 0.0, 3.0)
    assert [seg.assign(s, d * DAY).segment for d in (0, 4, 6, 31)] == [  # type: ignore[union-attr]
        "medium",
        "medium",
        "low",
        "lapsed",
    ]


def test_frequency_names_are_readable() -> None:
    seg = FrequencySegmenter(Settings())
    assert seg.describe("high") == "High frequency (weekly or more)"
    assert seg.describe("unknown-id") == "unknown-id"


@pytest.mark.parametrize(
    ("now_days", "expected"),
    [
        (5, "new"),
        (40, "active"),
        (100, "active"),
        (131, "at_risk"),
        (220, "at_risk"),
        (221, "lapsed"),
    ],
)
def test_lifecycle_by_recency(now_days: int, expected: str) -> None:
    seg = LifecycleSegmenter(Settings())
    s = buyer(3, 0.0, 40 * DAY, 20.0)
    verdict = seg.assign(s, now_days * DAY)
    assert verdict is not None and verdict.segment == expected


def test_lifecycle_never_purchased() -> None:
    seg = LifecycleSegmenter(Settings())
    s = CustomerState.new("c", 0.0)
    s.last_seen = 20 * DAY
    assert [seg.assign(s, d * DAY).segment for d in (30, 31, 200, 201)] == [  # type: ignore[union-attr]
        "new",
        "at_risk",
        "at_risk",
        "lapsed",
    ]


def test_lifecycle_reactivated_window() -> None:
    seg = LifecycleSegmenter(Settings(reactivated_days=10))
    s = buyer(5, 0.0, 300 * DAY, 50.0)
    s.reactivated_at = 300 * DAY
    assert seg.assign(s, 310 * DAY).segment == "reactivated"  # type: ignore[union-attr]
    assert seg.assign(s, 311 * DAY).segment == "active"  # type: ignore[union-attr]
