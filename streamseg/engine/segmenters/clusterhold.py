"""The cluster segmenter's hold and due rules (the base class of its segmenter).

:class:`ClusterHold` holds what
:class:`~streamseg.engine.segmenters.clusters.ClusterSegmenter` decides once a
model exists and a customer has a verdict: whether the published cluster is held
(:meth:`~ClusterHold.hold`: :meth:`~ClusterHold.margin_at`, :meth:`~ClusterHold.alike`,
:meth:`~ClusterHold.still_fits`) and when growing recency alone moves an idle
customer (:meth:`~ClusterHold.due`, from
:meth:`~streamseg.engine.clusterassign.Assigner.next_change`), with the
per-customer caches that assignment, hold and due of one evaluation share
(:meth:`~ClusterHold._static`, :meth:`~ClusterHold._z`). The population model
(sample, refits, versions, ``moved``, snapshots) and ``assign`` are the
segmenter's (:mod:`streamseg.engine.segmenters.clusters`, where the rules are
described); its ``__init__`` sets the attributes declared here.
"""

from __future__ import annotations

import math
from typing import Any

from streamseg.engine.clusterassign import STEP_S, Assigner
from streamseg.engine.clusterfeatures import recency, static
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment

MIN_SESSIONS = 3  # customers are sampled and assigned from their third visit (ratios settle)
DWELL_FACTOR = 5.0  # the hold margin is this much wider within flap_window_s of a change


class ClusterHold:
    """Hold and due rules of the cluster segmenter, over its current
    :class:`~streamseg.engine.clusterassign.Assigner`."""

    name: str
    hysteresis: bool  # settings.hysteresis (off: keeps nothing; margin and dwell 0)
    margin: float  # settings.min_margin
    dwell: float  # settings.flap_window_s
    grace: float  # settings.cluster_recency_grace_days
    idle_dwell: float  # settings.cluster_idle_dwell_days, in seconds
    half_life: float  # settings.half_life_days
    local: dict[str, list[Any]]  # this worker's customers (see ClusterSegmenter.__init__)
    assigner: Assigner | None
    _words: dict[str, frozenset[str]]
    _row: tuple[tuple[float, ...], list[float]] | None  # see _static
    _zmemo: tuple[Assigner, list[float], float, list[float]] | None  # see _z
    _ncmemo: tuple[list[float], str | None, float, float | None] | None  # see _due_from

    def _static(self, state: CustomerState) -> list[float]:
        """:func:`~streamseg.engine.clusterfeatures.static` of ``state``, remembered while
        its inputs stay the same (learn, assign, hold and due of one evaluation read the
        same row)."""
        d = state.d_devices
        key = (state.decay_ts, state.first_seen, state.d_purchases, state.purchases,
               state.monetary, state.d_sessions, state.d_page_views, state.d_cart_adds,
               d[0], d[1], d[2], d[3])
        row = self._row
        if row is not None and row[0] == key:
            return row[1]
        vals = static(state, self.half_life)
        self._row = (key, vals)
        return vals

    def _z(self, a: Assigner, state: CustomerState, now: float) -> list[float]:
        """The scaled vector of ``state`` at ``now``, remembered while the model, the
        static row (:meth:`_static`) and the recency stay the same."""
        row = self._static(state)
        rec = recency(state.last_seen, now, self.grace)
        m = self._zmemo
        if m is not None and m[0] is a and m[1] is row and m[2] == rec:
            return m[3]
        z = a.scale([*row, rec])
        self._zmemo = (a, row, rec, z)
        return z

    def still_fits(self, a: Assigner, current: str, z: list[float]) -> bool:
        """Whether the published ``current`` may still be held: a "frequent buyer" cluster
        never for a customer who never bought; a "long inactive" one never for a customer
        seen within the recency grace, even if the clock moved them into it days ago.

        Until 2026-11-27 a "long inactive" cluster was held after a return visit until
        ``flap_window_s`` (14 days) had passed since the move into it, "so the visit
        undoes no recent move": the customer was told "long inactive" for up to two weeks
        after buying, and the move back came just after the flap window (Complete Journey:
        5,374 cluster changes and 15.69% reverted within 28 days with it, 5,410 and 16.03%
        without; within 14 days 0.56% with it, 10.28% without). It saved no change, it
        moved reverts out of the window the flap rate counts."""
        return a.fits(current, z)

    def margin_at(self, since: float | None, now: float) -> float:
        """The hold margin: ``min_margin``, times :data:`DWELL_FACTOR` within
        ``flap_window_s`` of the customer's latest cluster change."""
        if since is not None and now - since < self.dwell:
            return self.margin * DWELL_FACTOR
        return self.margin

    def alike(self, current: str, other: str) -> bool:
        """Whether ``current`` and ``other`` are published clusters named with the same
        words relative to the population (a move between them would tell the customer
        nothing new; the words of :func:`~streamseg.engine.clusternames.apart` compare them)."""
        w = self._words.get(current)
        return w is not None and w == self._words.get(other)

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: str) -> bool:
        """Keep ``current`` until the customer is :meth:`margin_at` past its border with
        the verdict (whatever the trigger), and while the verdict is :meth:`alike`; an
        idle customer also until they were that far past ``idle_dwell`` ago (the
        recency they gained since moves nobody: a clock tick or a new model's re-score
        alike; a customer evaluated at their own event is not idle, a profile record or a
        late event read after the customer's last activity is held like a tick)."""
        a = self.assigner
        if a is None:
            return False
        cur = state.segments.get(self.name)
        since = None if cur is None else float(cur[1])
        z = self._z(a, state, now)
        then = (self._z(a, state, now - self.idle_dwell)
                if self.idle_dwell > 0.0 and now - state.last_seen > 0.0 else None)
        return self.keeps(a, current, verdict.segment, z, then, self.margin_at(since, now))

    def keeps(self, a: Assigner, current: str, other: str, z: list[float],
              then: list[float] | None, margin: float) -> bool:
        """The hold rule (:meth:`hold`, and whom a new model re-scores, ``moved``): keep
        ``current`` against ``other`` for a customer at ``z`` while they are alike, or the
        name still fits and the customer is less than ``margin`` past the border; for an
        idle customer (``then``: their vector ``idle_dwell`` ago, None if not idle or no
        dwell) also while they were less than that past it then, or ``other`` was not to
        be told to them then (a "long inactive" cluster within the recency grace: the
        grace's end is what moves them, a dwell later). Hysteresis off: nothing is kept."""
        if not self.hysteresis:
            return False
        if self.alike(current, other):
            return True
        if not self.still_fits(a, current, z):  # its name is false: no hold
            return False
        if a.past(z, current, other) < margin:
            return True
        return then is not None and (a.past(then, current, other) < margin
                                     or not a.fits(other, then))

    def due(self, state: CustomerState, after: float) -> float | None:
        a = self.assigner
        cur = state.segments.get(self.name)
        label, since = (None, None) if cur is None else (str(cur[0]), float(cur[1]))
        entry = self.local.get(state.customer_id)
        t = None
        if a is not None and state.sessions >= MIN_SESSIONS:
            if entry is not None and self._still(entry, a, state, label, since, after):
                return entry[3]  # type: ignore[no-any-return]
            z = self._z(a, state, after - self.idle_dwell)  # a clock move waits the dwell
            t = self._due_from(a, z, label, since, state.last_seen, after)
        if entry is not None:
            entry[2], entry[3], entry[4], entry[5], entry[6] = label, t, since, after, a
        return t

    def _still(self, entry: list[Any], a: Assigner, state: CustomerState, label: str | None,
               since: float | None, after: float) -> bool:
        """Whether the due time in ``entry`` (found after ``entry[5]``) is the due time
        after ``after`` too: same model, row, last visit, label and margin, and still
        ahead. Border crossings are fixed recency levels
        (:meth:`~streamseg.engine.clusterassign.Assigner.next_change`), so a later look
        finds the same; a due time found within the wider margin's dwell is at
        most its end, so one still ahead was found under the same margin."""
        t, before = entry[3], entry[5]
        return not (entry[6] is not a or before is None or before > after
                    or (t is not None and t <= after + STEP_S) or entry[2] != label
                    or entry[4] != since or entry[1] != state.last_seen
                    or entry[0] != self._static(state))

    def _due_from(self, a: Assigner, z: list[float], label: str | None, since: float | None,
                  last_seen: float, after: float) -> float | None:
        best = None
        if since is not None and after < since + self.dwell:
            best = since + self.dwell + STEP_S  # the wider margin ends
        margin = self.margin_at(since, after)
        nc = self._ncmemo
        if nc is not None and nc[0] is z and nc[1] == label and nc[2] == margin:
            r = nc[3]
        else:
            r = a.next_change(z, label, margin)
            self._ncmemo = (z, label, margin, r)
        if r is not None:
            t = a.recency_time(r, last_seen, self.grace) + self.idle_dwell
            if t != math.inf and (best is None or max(t, after) + STEP_S < best):
                best = max(t, after) + STEP_S
        return best
