"""Time-driven work per partition, Kafka-Streams-punctuator style.

A customer's state lives on the partition its events arrive on, whatever the
producer's partitioner. So the worker never addresses a customer by its own
hash: per owned partition it keeps a schedule of idle customers (refilled from
the table after an assignment, from the partition recorded in each state), and
its timer sends a tick *to that partition* when some of them are due; the agent
then evaluates them against that partition's table (``Applier.on_tick``).
:meth:`Punctuator.rescore` is the hook for "re-evaluate these customers now"
(population models that moved).

The event clock is persisted per partition in the ``partition-clock`` table
(key ``clock:<partition>``, value the highest event time seen there) and
restored when the partition is (re)assigned, so a restarted worker screens
events against the same clock (no spurious ``timestamp_out_of_range``).
Time-driven evaluation uses :meth:`Punctuator.now`: the event clock capped at
the progress of the slowest input partition still delivering
(:class:`~streamseg.engine.clock.SourceWatermark`), so that catching up on a
backlog in which one topic is read ahead of another never publishes a clock
move before the events that would have prevented it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.engine.clock import EventClock, SourceWatermark
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.validate import is_alias
from streamseg.partitions import PartitionState, home

log = logging.getLogger(__name__)
BEHIND_TICK_S = 0.25  # a tick that left customers to re-score is followed this soon

# edge fields of a table value: its partition, its input positions, and whether it is
# a suppression marker that only a consent copy created (no customer seen there)
PARTITION, POSITIONS, COPY = "_partition", "_positions", "_copy"
REBUILD_SLICE_S = 0.02  # the schedule rebuild hands the event loop back this often


def clock_key(p: int) -> bytes:
    """Key of partition ``p``'s event-clock record (partition in the key: any store works).

    >>> clock_key(3)
    b'clock:3'
    """
    return b"clock:%d" % p


def tables_ready(ss: Streamseg) -> bool:
    """Whether Faust's tables hold every active partition (recovery after an assignment done).

    ``TableManagerT.actives_ready`` is cleared when a rebalance starts and set when
    the changelogs of the assigned partitions are restored (a stand-in without
    Faust tables counts as ready).
    """
    return bool(getattr(getattr(ss.app, "tables", None), "actives_ready", True))


class Punctuator:
    """Per owned partition: schedule, event clock, customers to re-evaluate."""

    def __init__(self, ss: Streamseg, engine: Engine) -> None:
        self.ss = ss
        self.engine = engine
        self.clock = EventClock(ss.settings.allowed_lateness_s)  # max over owned partitions
        self.sources = SourceWatermark(ss.settings.source_idle_s)  # progress of each input
        self.parts: dict[int, PartitionState] = {}
        self.assigned_parts: set[int] | None = None  # None: not told (unit tests): all
        self.rebuild = True  # refill the schedules from the table (start, rebalance)
        # with STREAMSEG_PSEUDONYMISE_KEY: states of the owned partitions keyed by a raw
        # id (not an alias), counted at the last rebuild; None: no rebuild yet
        self.raw_ids: int | None = None

    def part(self, p: int) -> PartitionState:
        got = self.parts.get(p)
        if got is None:
            got = self.parts[p] = PartitionState()
        return got

    def assign(self, partitions: set[int]) -> None:
        """After a rebalance: keep the owned partitions; reload clocks; rebuild schedules."""
        self.assigned_parts = partitions
        self.parts = {p: s for p, s in self.parts.items() if p in partitions}
        for state in self.parts.values():
            state.clock_loaded = False
        self.rebuild = True

    def open(self, p: int) -> PartitionState:
        """The partition's record; its persisted event clock is restored on first use.

        Called with an event of partition ``p`` current (the clock table is read there).
        """
        state = self.part(p)
        if not state.clock_loaded:
            state.clock_loaded = True
            raw = self.ss.clocks.get(clock_key(p))
            if raw is not None:
                stored = float(codec.loads(raw))
                state.stored_clock = stored
                state.clock = stored if state.clock is None else max(state.clock, stored)
                self.clock.observe(stored)
        return state

    def restore_clocks(self) -> None:
        """Before any event since a (re)start: the persisted clocks of the owned partitions."""
        for p in self.assigned_parts or ():
            raw = self.ss.clocks.get(clock_key(p))
            if raw is not None:
                self.clock.observe(float(codec.loads(raw)))

    def now(self) -> float | None:
        """Event time that time-driven evaluation may reach: the event clock, capped at
        the slowest active input (less the allowed lateness); None: not yet."""
        now = self.clock.now()
        cap = self.sources.cap(time.monotonic())
        if now is None or cap is None:
            return now
        if cap == -math.inf:
            return None
        return min(now, cap - self.clock.allowed_lateness_s)

    def due_ticks(self) -> list[tuple[int, bytes]]:
        """(partition, tick value) for each owned partition with customers to evaluate."""
        if self.clock.max_seen is None:
            self.restore_clocks()
        now = self.now()
        if now is None:
            return []
        if self.rebuild:
            if not tables_ready(self.ss):
                return []  # the table of a new assignment is still being restored
            self.reschedule()
        value = codec.dumps({"now": now})
        out = []
        for p, state in sorted(self.parts.items()):
            state.ready.update(state.schedule.pop_due(now))
            if state.ready or state.rescore:
                out.append((p, value))
        return out

    def behind(self) -> list[int]:
        """The partitions a tick left customers to re-score for (``take_rescore``) and no
        quick tick is on its way to: the ``streamseg.rescore`` timer ticks them without
        waiting for ``tick_interval_s``."""
        return [p for p, state in sorted(self.parts.items())
                if state.behind and state.rescore and not state.quick_sent]

    def reschedule(self) -> None:
        """Refill every owned partition's schedule, and the population models, from the table.

        All at once (:meth:`rebuild_steps` without pauses); the clock timer uses
        :meth:`reschedule_cooperatively`.
        """
        for _ in self.rebuild_steps():
            pass

    async def reschedule_cooperatively(self) -> None:
        """:meth:`reschedule`, handing the event loop back every :data:`REBUILD_SLICE_S`.

        In one call a worker restarted on 50,000 customers stalled its event loop
        for about 8 s (a lookup answered after 8.54 s; docs/OPERATIONS.md), Faust's
        web server (lookups, ``GET /``) and timers with it; in slices the slowest
        answer took 0.61-0.87 s. Batches still wait (the caller holds the ingest
        lock). A new assignment during the rebuild abandons it; the next timer run
        starts again.
        """
        for _ in self.rebuild_steps():
            await asyncio.sleep(0)

    def rebuild_steps(self) -> Iterator[None]:
        """The rebuild of :meth:`reschedule`, pausing (``yield``) between slices of work.

        After an assignment the population models hold exactly the customers of the
        owned partitions: those of a partition that went to another worker are
        forgotten (:meth:`Engine.retain`, the removal path of erasure and
        withdrawal), before the owned ones are restored, so a trainer's sample is
        drawn from its owned customers only. A customer forgotten is no longer
        waiting for a re-evaluation here either. A customer last evaluated under
        other settings (``Settings.definition``) is re-evaluated from the next tick on.

        With ``STREAMSEG_PSEUDONYMISE_KEY`` set, also count the states keyed by something
        other than an alias (:attr:`raw_ids`): written before the key was turned on.

        The table's states are read at once (no table iterator is kept across a
        pause: a revoked partition's store may close meanwhile; the states cannot
        change meanwhile: batches wait for the timer), then each is told its
        partition and restored, both in slices of :data:`REBUILD_SLICE_S`. When
        :meth:`assign` runs during a pause the rebuild stops there (:attr:`rebuild`
        is set again).
        """
        self.rebuild = False
        for state in self.parts.values():
            state.schedule = type(state.schedule)()
        pseudonymising = bool(self.ss.settings.pseudonymise_key)
        raw_ids = stale = 0
        owned: list[tuple[int, bytes, bytes]] = []
        rows = list(self.ss.state.items())  # no table iterator across a pause
        slice_end = time.perf_counter() + REBUILD_SLICE_S
        for key, raw in rows:
            if time.perf_counter() > slice_end:
                yield
                if self.rebuild:
                    return  # a new assignment: the next timer run starts again
                slice_end = time.perf_counter() + REBUILD_SLICE_S
            p = codec.loads(raw).get(PARTITION)
            if not isinstance(p, int):
                p = home(key, self.ss.settings.partitions)  # written before partitions were kept
            if self.assigned_parts is None or p in self.assigned_parts:
                owned.append((p, key, raw))
        if self.assigned_parts is not None:  # None: not told (unit tests), every partition
            gone = self.engine.retain({key.decode() for _p, key, _raw in owned})
            for state in self.parts.values():
                for cid in gone:
                    state.rescore.pop(cid, None)
                state.behind = state.behind and bool(state.rescore)
        for p, key, raw in owned:
            if time.perf_counter() > slice_end:
                yield
                if self.rebuild:
                    return
                slice_end = time.perf_counter() + REBUILD_SLICE_S
            cid = key.decode()
            if pseudonymising and not is_alias(cid):
                raw_ids += 1
            customer = CustomerState.from_dict(codec.loads(raw))
            self.engine.restore(customer)  # population models (RFM ranks) cover owned customers
            self.part(p).schedule.push(cid, self.engine.due(customer))
            if customer.definition != self.engine.definition and not customer.withdrawn:
                # evaluated under other settings (or before states recorded them): the
                # next tick re-evaluates it under these (Engine.rescore -> redefine)
                self.part(p).rescore[cid] = None
                stale += 1
        self.raw_ids = raw_ids
        if stale:
            log.warning("%d customers were last evaluated under other segment settings "
                        "(thresholds, margins, audiences file): re-evaluating them from the next "
                        "tick on; their changes follow. Keep every worker's settings equal.", stale)

    def rescore(self, customer_ids: list[str]) -> None:
        """Re-evaluate these customers from the next tick of every partition that may hold
        them (a share per tick when many: :func:`~streamseg.partitions.take_rescore`)."""
        for p in self.assigned_parts if self.assigned_parts is not None else list(self.parts):
            self.part(p).rescore.update(dict.fromkeys(customer_ids))  # a pending id keeps its place

