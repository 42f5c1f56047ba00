"""Channel and device preference: where and on what a customer shops.

From the decayed channel and device mixes of the customer's events:

* ``app`` when the app channel dominates;
* ``store`` when in-store purchases dominate;
* ``marketing_driven`` when email, social, search and ads together dominate;
* on the web (or with no channel given): ``mobile_web`` / ``desktop_web`` by the
  dominant device (tablets count as desktop), ``multi_device`` otherwise, ``web``
  when no device was ever given;
* ``omnichannel`` when no channel group dominates.

"Dominates" means a share of at least ``channel_dominance``. No channel and
no device seen yet: no verdict. All mixes decay at the same rate, so shares
(and the verdict) change only at the customer's events: :meth:`ChannelSegmenter.due`
is never.

Hysteresis (:meth:`ChannelSegmenter.hold`) is a band of ``channel_margin``
on the dominance threshold: a published channel group or device is kept while
its share stays at least ``channel_dominance - channel_margin``; a published
``omnichannel`` (``multi_device``) while no group (device) reaches
``channel_dominance + channel_margin``.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = ChannelSegmenter(Settings())
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 0.0) is None
True
>>> s.d_channels = [1.0, 4.0, 0, 0, 0, 0, 0, 0]
>>> seg.assign(s, 0.0)
Assignment(segment='app', reason='app 80% of visits', margin=None, model_version=None)
>>> s.d_channels = [4.0, 0, 1.0, 0, 0, 0, 0, 0]; s.d_devices = [1.0, 1.0, 0, 0]
>>> seg.assign(s, 0.0).segment
'multi_device'
>>> s.d_devices = [9.0, 1.0, 0, 0]
>>> seg.assign(s, 0.0).segment
'mobile_web'
>>> s.d_channels = [2.0, 2.0, 1.0, 0, 0, 0, 0, 0]
>>> seg.assign(s, 0.0).segment
'omnichannel'
"""

from __future__ import annotations

from operator import itemgetter

from streamseg.config import Settings
from streamseg.engine.features import CHANNELS, CustomerState
from streamseg.engine.segmenters.base import Assignment, NoPopulation, Trigger

GROUPS: dict[str, tuple[str, ...]] = {
    "app": ("app",),
    "store": ("store",),
    "marketing_driven": ("email", "social", "search", "ads"),
    "web": ("web", "other"),
}
NAMES = {
    "app": "App-first shopper",
    "store": "In-store shopper",
    "marketing_driven": "Comes through marketing channels",
    "mobile_web": "Mobile web shopper",
    "desktop_web": "Desktop web shopper",
    "multi_device": "Web shopper on several devices",
    "web": "Web shopper (device unknown)",
    "omnichannel": "Omnichannel shopper",
}


class ChannelSegmenter(NoPopulation):
    """Rule segmenter over the decayed channel and device mix."""

    name = "channel"

    def __init__(self, settings: Settings) -> None:
        self.dominance = settings.channel_dominance
        self.margin = settings.channel_margin
        # group -> positions of its channels in ``CustomerState.d_channels``
        self.groups = [(g, [CHANNELS.index(c) for c in chans]) for g, chans in GROUPS.items()]
        # (group, getter of its channels' values, several?): assign's hot loop, which sums
        # them in the same order as ``sum([mix[i] for i in idx])`` (the same float)
        self._pick = [(g, itemgetter(*idx), len(idx) > 1) for g, idx in self.groups]
        self._omni = Assignment("omnichannel", f"no channel above {self.dominance:.0%}")

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        total = sum(state.d_channels)
        if total <= 0.0 and sum(state.d_devices) <= 0.0:
            return None
        group = "web"
        if total > 0.0:
            mix = state.d_channels
            best = -1.0
            for g, pick, many in self._pick:  # the largest share; ties go to the later name
                v = (sum(pick(mix)) if many else pick(mix)) / total
                if v > best or (v == best and g > group):
                    group, best = g, v
            if best < self.dominance:
                return self._omni
            if group != "web":
                return Assignment(group, f"{group} {best:.0%} of visits")
        return self._device(state)

    def _device(self, state: CustomerState) -> Assignment:
        total = sum(state.d_devices)
        if total <= 0.0:
            return Assignment("web", "web, device unknown")
        mobile = state.d_devices[0] / total if total else 0.0
        desktop = (state.d_devices[1] + state.d_devices[2]) / total if total else 0.0
        if mobile >= self.dominance:
            return Assignment("mobile_web", f"web, mobile {mobile:.0%}")
        if desktop >= self.dominance:
            return Assignment("desktop_web", f"web, desktop {desktop:.0%}")
        return Assignment("multi_device", "web on several devices")

    def due(self, state: CustomerState, after: float) -> float | None:
        return None

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """Keep ``current`` while its share is within ``channel_margin`` of the threshold.

        >>> from streamseg.config import Settings
        >>> seg = ChannelSegmenter(Settings(channel_dominance=0.6, channel_margin=0.1))
        >>> s = CustomerState.new("c", 0.0)
        >>> s.d_channels = [4.5, 5.5, 0, 0, 0, 0, 0, 0]  # app 55%: omnichannel, app kept
        >>> v = seg.assign(s, 0.0); v.segment, seg.hold(s, "app", v, 0.0, "event")
        ('omnichannel', True)
        >>> s.d_channels = [3.5, 6.5, 0, 0, 0, 0, 0, 0]  # app 65%: omnichannel kept
        >>> v = seg.assign(s, 0.0); v.segment, seg.hold(s, "omnichannel", v, 0.0, "event")
        ('app', True)
        """
        total = sum(state.d_channels)
        if current == "omnichannel":
            if total <= 0.0:
                return False
            best = max(sum([state.d_channels[i] for i in idx]) for _, idx in self.groups) / total
            return best < self.dominance + self.margin
        if current == "multi_device" and verdict.segment in ("mobile_web", "desktop_web"):
            return self._share(state, verdict.segment, total) < self.dominance + self.margin
        return self._share(state, current, total) >= self.dominance - self.margin

    def _share(self, state: CustomerState, segment: str, total: float) -> float:
        """The share that makes ``segment`` (0.0 for segments without one)."""
        for group, idx in self.groups:
            if group == segment:
                return sum([state.d_channels[i] for i in idx]) / total if total > 0.0 else 0.0
        devices = sum(state.d_devices)
        if devices <= 0.0 or segment not in ("mobile_web", "desktop_web"):
            return 0.0
        # a device segment needs the web group to dominate as well
        web = self._share(state, "web", total) if total > 0.0 else 1.0
        if segment == "mobile_web":
            return min(web, state.d_devices[0] / devices)
        return min(web, (state.d_devices[1] + state.d_devices[2]) / devices)

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)

    def segments(self) -> tuple[str, ...]:
        return tuple(NAMES)
