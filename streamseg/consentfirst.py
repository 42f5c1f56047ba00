"""Consent first: after an assignment, inputs wait until the consent backlog is read.

Consent events and a customer's other events come on different topics, and Kafka
orders records within a partition only. After a restart or a rebalance the worker
finds a backlog on every topic, and Faust hands the agent whichever records its
fetches returned first: a purchase made *after* a withdrawal could be read *before*
it, profiled and published (a change acted on for a customer who had withdrawn;
measured on the real broker, restart with a backlog: 20 such changes for 24
customers). The engine's consent log (:mod:`streamseg.engine.consentlog`) handles
the other order (a withdrawal read after inputs that followed it).

So, per assignment, :class:`ConsentFirst` knows where each assigned consent
partition ended when it was assigned (its end offset, read from the broker). Until
the agent has read every one of them up to that end, an input event (clickstream,
purchase, profile) is not applied: the ingest defers its partition
(:meth:`streamseg.gate.Gate.defer`: not acknowledged, re-read from that event on),
and re-reads the deferred partitions as soon as consent is read up to date; no clock
tick is sent meanwhile. The wait ends early, with a warning, when the worker has
been taking events for ``give_up_s`` (three times ``STREAMSEG_GATE_HOLD_S``) with no
consent record among them (the end offset was a transaction marker, or the consent
partition does not move): consent is then applied as read, as it always is once the
backlog is read.

Only the backlog present at the assignment is read first; after that, consent and
inputs are applied as they come (what the engine's log covers, and what it does not:
docs/RELIABILITY.md, "Consent by event time").

Examples
--------
>>> cf = ConsentFirst(give_up_s=3.0)
>>> cf.assigned({("consent", 0): 5, ("consent", 1): None}, {("consent", 0): 8, ("consent", 1): 0})
>>> cf.took(now=0.0)
>>> cf.done(now=0.0)  # consent[0] has 5..7 unread
False
>>> cf.read("consent", 0, 7, now=0.1)
>>> cf.done(now=0.1)
True
>>> cf.assigned({("consent", 0): 8}, None)  # end offsets unknown: nothing to wait for
>>> cf.done(now=0.0)
True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

TP = tuple[str, int]


class ConsentFirst:
    """Whether inputs must wait for the consent backlog of the current assignment."""

    def __init__(self, give_up_s: float) -> None:
        self.give_up_s = give_up_s
        self.behind: dict[TP, tuple[int, int]] = {}  # tp -> (next offset to read, end)
        self.last_read: float | None = None  # the last consent record, or the first batch

    def assigned(self, committed: Mapping[TP, int | None],
                 ends: Mapping[TP, int] | None) -> None:
        """A new assignment: the consent partitions' committed and end offsets.

        ``ends`` None (the broker could not say): nothing is waited for.
        """
        self.last_read = None
        self.behind = {}
        if not ends:
            return
        for tp, end in ends.items():
            start = committed.get(tp) or 0
            if start < end:
                self.behind[tp] = (start, end)
        if self.behind:
            log.info("reading consent first: inputs wait until %s", ", ".join(
                f"{t}[{p}] is read to offset {end - 1}"
                for (t, p), (_, end) in sorted(self.behind.items())))

    def took(self, now: float) -> None:
        """The worker took a batch at ``now``: the wait's clock runs from its first one
        (not while the tables are restored)."""
        if self.last_read is None:
            self.last_read = now

    def read(self, topic: str, partition: int, offset: int, now: float) -> None:
        """The agent read consent record ``offset`` of ``topic[partition]`` at ``now``."""
        tp = (topic, partition)
        pos = self.behind.get(tp)
        if pos is None:
            return
        self.last_read = now
        if offset + 1 >= pos[1]:
            del self.behind[tp]
            if not self.behind:
                log.info("consent read up to date: inputs are re-read and applied")
        elif offset + 1 > pos[0]:
            self.behind[tp] = (offset + 1, pos[1])

    def done(self, now: float) -> bool:
        """Nothing (any more) to wait for at ``now``.

        The wait ends without the backlog read when the worker has been taking events
        for ``give_up_s`` with no consent record among them (the end offset was a
        transaction marker, or the consent partition does not move).

        >>> cf = ConsentFirst(give_up_s=3.0)
        >>> cf.assigned({}, {("consent", 0): 4})
        >>> cf.done(now=1.0)  # nothing taken yet (tables being restored)
        False
        >>> cf.took(now=2.0)
        >>> cf.read("consent", 0, 1, now=3.0)
        >>> cf.done(now=5.0), cf.done(now=6.0), cf.behind
        (False, True, {})
        """
        if not self.behind:
            return True
        if self.last_read is None or now - self.last_read < self.give_up_s:
            return False
        log.warning("no consent record read for %.1f s while inputs waited for %s; "
                    "applying inputs as they come", now - self.last_read,
                    ", ".join(f"{t}[{p}] (read to {nxt - 1} of {end - 1})"
                              for (t, p), (nxt, end) in sorted(self.behind.items())))
        self.behind = {}
        return True
