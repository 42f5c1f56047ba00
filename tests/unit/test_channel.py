"""Channel / device preference segmenter: exact segments for known mixes."""

from __future__ import annotations

import pytest

from streamseg.config import Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CHANNELS, DEVICES, CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.channel import NAMES, ChannelSegmenter


def mix(channels: dict[str, float], devices: dict[str, float]) -> CustomerState:
    s = CustomerState.new("c", 0.0)
    s.d_channels = [channels.get(c, 0.0) for c in CHANNELS]
    s.d_devices = [devices.get(d, 0.0) for d in DEVICES]
    return s


@pytest.mark.parametrize(
    ("channels", "devices", "segment", "reason"),
    [
        ({"app": 3.0, "web": 1.0}, {"mobile": 4.0}, "app", "app 75% of visits"),
        ({"store": 6.0, "web": 4.0}, {}, "store", "store 60% of visits"),
        ({"email": 2.0, "ads": 2.0, "search": 1.0, "web": 1.0}, {}, "marketing_driven",
         "marketing_driven 83% of visits"),
        ({"web": 5.0}, {"mobile": 3.0, "desktop": 1.0}, "mobile_web", "web, mobile 75%"),
        ({"web": 5.0}, {"desktop": 1.0, "tablet": 2.0}, "desktop_web", "web, desktop 100%"),
        ({"web": 5.0}, {"mobile": 1.0, "desktop": 1.0}, "multi_device",
         "web on several devices"),
        ({"web": 5.0}, {}, "web", "web, device unknown"),
        ({}, {"mobile": 2.0}, "mobile_web", "web, mobile 100%"),
        ({"web": 1.0, "app": 1.0, "store": 1.0}, {"mobile": 3.0}, "omnichannel",
         "no channel above 60%"),
    ],
)
def test_segments(channels: dict[str, float], devices: dict[str, float], segment: str,
                  reason: str) -> None:
    verdict = ChannelSegmenter(Settings()).assign(mix(channels, devices), 0.0)
    assert verdict is not None
    assert (verdict.segment, verdict.reason, verdict.margin) == (segment, reason, None)
    assert segment in NAMES


def test_no_channel_no_device_no_verdict() -> None:
    assert ChannelSegmenter(Settings()).assign(mix({}, {}), 0.0) is None


def test_dominance_threshold_is_configurable() -> None:
    s = mix({"app": 3.0, "web": 2.0}, {})
    assert ChannelSegmenter(Settings()).assign(s, 0.0).segment == "app"  # type: ignore[union-attr]
    strict = ChannelSegmenter(Settings(channel_dominance=0.8))
    assert strict.assign(s, 0.0).segment == "omnichannel"  # type: ignore[union-attr]


def channel_moves(cfg: Settings) -> list[tuple[str | None, str, str]]:
    eng = Engine(cfg)
    state = None
    moves = []
    for i, (channel, device) in enumerate([("web", "desktop"), ("app", "mobile"),
                                           ("app", "mobile"), ("app", "mobile")]):
        ev = Event("click", "page_view", f"e{i}", "c1", float(i), channel=channel, device=device)
        out = eng.apply(state, ev)
        state = out.state
        moves += [(c["from_segment"], c["to_segment"], c["to_name"]) for c in out.changes
                  if c["segmenter"] == "channel"]
    return moves


def test_engine_publishes_channel_moves() -> None:
    assert channel_moves(Settings(hysteresis=False)) == [
        (None, "desktop_web", "Desktop web shopper"),
        ("desktop_web", "omnichannel", "Omnichannel shopper"),
        ("omnichannel", "app", "App-first shopper"),
    ]


def test_channel_band_keeps_the_channel_until_its_share_falls_below_the_margin() -> None:
    # dominance 0.6, margin 0.3: desktop web is kept at a web share of 50% and 33%,
    # left at 25% for app (75%), without a stop in omnichannel
    assert channel_moves(Settings(channel_margin=0.3)) == [
        (None, "desktop_web", "Desktop web shopper"),
        ("desktop_web", "app", "App-first shopper"),
    ]
