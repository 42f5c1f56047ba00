"""Run ``python -m streamseg worker`` subprocesses for reliability tests.

* :func:`make_settings` builds a :class:`Settings` with unique topics, app id and
  data dir, and :func:`worker_env` turns it into ``STREAMSEG_*`` variables.
* :class:`WorkerProc` starts a worker, waits until it is ready (its log shows
  ``[^Worker]: Ready``) or until it has partitions, kills it with SIGKILL, or
  stops it with SIGTERM; its log stays in a file.
* :class:`Workers` is a context manager that stops every worker it started and,
  when the block fails, prints the tail of every log (pytest shows it).
* :func:`story` makes a deterministic event stream in which each customer uses
  one input topic (so the order of a customer's events is the order of one
  partition), and :func:`reference_changes` is what the pure engine publishes
  for it: the expected outcome of any worker run.
* :class:`Feeder` produces a stream at a steady rate from a background task,
  so a test can kill or restart workers while events are flowing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka_helpers import group_lag, partitions_of, unique_name

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter
from streamseg.engine.validate import Valid, Validator

REPO = Path(__file__).resolve().parents[2]
READY = "[^Worker]: Ready"
TOPICS = ("clickstream", "purchases", "consent", "profiles", "changes", "segments",
          "dead_letters", "models", "ticks")
# five years back: the longest story (16 events, gaps up to 100 days) stays behind the wall
# clock, where a quiet spell longer than the future skew is never a reason to reject
T0 = datetime(2021, 1, 4, tzinfo=UTC).timestamp()
# Per-customer rule segmenters: their changes depend only on the customer's own
# events, so any worker run must publish exactly the reference's change ids.
# (RFM and clusters learn from the population, which depends on which worker
# saw what; they are left out of the comparison.)
RULE_SEGMENTERS = ("frequency", "lifecycle")

Message = tuple[str, bytes, bytes]  # (stream kind, key, value)


def make_settings(tag: str, data_dir: Path, broker: str, **overrides: Any) -> Settings:
    """Unique topics / app id for one test; timers effectively off (tick every hour)."""
    prefix = unique_name(tag)
    fields: dict[str, Any] = {
        "broker": broker,
        "app_id": prefix,
        "data_dir": str(data_dir),
        "partitions": 4,
        "store": "rocksdb://",
        "tick_interval_s": 3600.0,
        "log_level": "info",
        "metrics_port": 0,
        "web_port": 0,  # lookup API off unless a test asks for it (ports would collide)
        # a killed worker's partitions move on after 6 s (the broker's minimum)
        "broker_session_timeout_s": 6.0,
        "broker_heartbeat_interval_s": 1.0,
    }
    for name in TOPICS:
        fields[f"topic_{name}"] = f"{prefix}-{name}"
    fields.update(overrides)
    return Settings(**fields)


def another_app(settings: Settings, tag: str, data_dir: Path, **overrides: Any) -> Settings:
    """``settings`` of another app (own app id, data dir and topics) on the same models
    topic: it starts with the model snapshots the first app published."""
    prefix = unique_name(tag)
    fields: dict[str, Any] = {"app_id": prefix, "data_dir": str(data_dir)}
    for name in TOPICS:
        if name != "models":
            fields[f"topic_{name}"] = f"{prefix}-{name}"
    fields.update(overrides)
    return dataclasses.replace(settings, **fields)


def worker_env(settings: Settings, broker_url: str) -> dict[str, str]:
    """The environment of a worker subprocess for ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSEG_")}
    for f in dataclasses.fields(settings):
        if f.name == "extra":
            continue
        value = getattr(settings, f.name)
        env["STREAMSEG_" + f.name.upper()] = str(value).lower() if isinstance(
            value, bool
        ) else str(value)
    env["STREAMSEG_BROKER"] = broker_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def assert_refused_at_start(env: dict[str, str], expected: str, bootstrap: str,
                                  topic: str) -> None:
    """``streamseg check`` and ``streamseg worker`` both exit 2 with one line starting with
    ``expected`` (no traceback), and the refused start created ``topic`` nowhere."""
    from aiokafka.admin import AIOKafkaAdminClient

    check = subprocess.run([sys.executable, "-m", "streamseg", "check"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stdout + check.stderr
    assert check.stderr.startswith(expected), check.stderr
    worker = subprocess.run([sys.executable, "-m", "streamseg", "worker"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert worker.returncode == 2, worker.stderr[-2000:]
    last = [line for line in worker.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(expected) and "Traceback" not in worker.stderr, worker.stderr[-2000:]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert topic not in set(await admin.list_topics())
    finally:
        await admin.close()


class WorkerProc:
    """One ``python -m streamseg worker`` subprocess with its log file."""

    def __init__(self, name: str, settings: Settings, broker_url: str, log_dir: Path,
                 **env_overrides: str) -> None:
        self.name = name
        self.settings = settings
        self.env = worker_env(settings, broker_url)
        self.env.update(env_overrides)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> WorkerProc:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {self.name} run {self.runs} =====\n".encode())
            log.flush()
            self.log_start = self.log_path.stat().st_size
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamseg", "worker"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def run_log(self) -> str:
        """The log of the current (latest) run."""
        with self.log_path.open("rb") as fh:
            fh.seek(self.log_start)
            return fh.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _waiting(self, needle: str, count: int, deadline: float, timeout: float) -> bool:
        """Whether to keep waiting for ``needle``; fails if the worker exited or time is up."""
        if self.run_log().count(needle) >= count:
            return False
        if not self.alive():
            raise AssertionError(f"{self.name} exited:\n{self.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{self.name}: no {needle!r} after {timeout}s\n{self.tail()}")
        return True

    def wait_for(self, needle: str, timeout: float = 60.0, count: int = 1) -> None:
        """Wait until the current run's log contains ``needle`` ``count`` times."""
        deadline = time.monotonic() + timeout
        while self._waiting(needle, count, deadline, timeout):
            time.sleep(0.1)

    async def await_for(self, needle: str, timeout: float = 60.0, count: int = 1) -> None:
        """:meth:`wait_for` without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while self._waiting(needle, count, deadline, timeout):
            await asyncio.sleep(0.1)

    async def ready(self, timeout: float = 60.0) -> WorkerProc:
        await self.await_for(READY, timeout)
        return self

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=30)

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"----- {self.name} ({self.log_path}) -----\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def crashes(self) -> list[str]:
        """Log lines showing a crashed agent / service or an unhandled traceback."""
        text = self.log_path.read_text(errors="replace")
        return [ln for ln in text.splitlines() if "Crashed" in ln or "Traceback" in ln]


class Workers:
    """Start workers inside a ``with`` block; stop them all at the end, show logs on failure."""

    def __init__(self, broker_url: str, log_dir: Path) -> None:
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.procs: list[WorkerProc] = []

    def new(self, name: str, settings: Settings, **env: str) -> WorkerProc:
        proc = WorkerProc(name, settings, self.broker_url, self.log_dir, **env)
        self.procs.append(proc)
        return proc

    async def start_fed(self, name: str, settings: Settings, bootstrap: str,
                        inputs: Sequence[Message]) -> WorkerProc:
        """Start worker ``name``, wait until it is ready, then feed it ``inputs``."""
        proc = self.new(name, settings).start()
        await proc.ready()
        await feed_all(bootstrap, settings, inputs)
        return proc

    async def start_ready(self, named: Sequence[tuple[str, Settings]],
                          timeout: float = 120.0) -> list[WorkerProc]:
        """Start one worker per (name, settings), all at once, then wait until each is ready."""
        procs = [self.new(name, settings).start() for name, settings in named]
        for proc in procs:
            await proc.ready(timeout=timeout)
        return procs

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.procs:
            proc.stop()
        if typ is not None:
            for proc in self.procs:
                print(proc.tail(80), file=sys.stderr)


@contextmanager
def running(name: str, settings: Settings, broker_url: str, log_dir: Path) -> Iterator[WorkerProc]:
    """One worker, started and ready, for the ``with`` block; stopped after it, then
    fails if its log shows a crash."""
    proc = WorkerProc(name, settings, broker_url, log_dir).start()
    try:
        proc.wait_for(READY)
        yield proc
    finally:
        proc.stop()
    assert not proc.crashes(), proc.tail()


# ----------------------------------------------------------------- the event story


def _event(kind: str, cid: str, eid: str, ts: float) -> Message:
    body: dict[str, Any] = {"event_id": eid, "customer_id": cid,
                            "ts": datetime.fromtimestamp(ts, tz=UTC).isoformat()}
    if kind == "purchase":
        body.update(order_id=f"o-{eid}", amount=float(10 + sum(eid.encode()) % 90),
                    currency="EUR", channel="web")
    else:
        body.update(type="page_view", device="mobile", session_id=f"s-{eid}")
    return kind, cid.encode(), codec.dumps(body)


def story(customers: int, events_per_customer: int, seed: int = 7,
          prefix: str = "c") -> list[Message]:
    """A time-sorted stream: buyers (purchases topic) with shifting gaps, browsers (clicks).

    Each customer writes to exactly one input topic, so per customer the order
    of consumption is the order of one partition, whatever the worker does.
    """
    rng = random.Random(seed)
    timed: list[tuple[float, int, Message]] = []
    n = 0
    for c in range(customers):
        cid = f"{prefix}{c}"
        kind = "purchase" if c % 4 != 3 else "click"
        t = T0 + rng.uniform(0, 5) * DAY
        for e in range(events_per_customer):
            timed.append((t, n, _event(kind, cid, f"{cid}-e{e}", t)))
            n += 1
            # a mix of weekly, monthly and long gaps moves customers between tiers
            t += rng.choice([2.0, 5.0, 6.0, 12.0, 20.0, 35.0, 100.0]) * DAY
    timed.sort(key=lambda x: (x[0], x[1]))
    return [m for _, _, m in timed]


def engine_run(
    settings: Settings, inputs: Sequence[Message], engine: Engine | None = None
) -> tuple[dict[str, CustomerState | None], list[tuple[Event, Outcome]]]:
    """The pure engine over the valid ``inputs`` in order: final states, (event, outcome)s."""
    engine = engine or Engine(settings)
    validator = Validator(settings)
    states: dict[str, CustomerState | None] = {}
    steps: list[tuple[Event, Outcome]] = []
    for kind, key, value in inputs:
        result = validator.check(kind, key, value)  # type: ignore[arg-type]
        if isinstance(result, Valid):
            ev = result.event
            out = engine.apply(states.get(ev.customer_id), ev)
            states[ev.customer_id] = out.state
            steps.append((ev, out))
    return states, steps


def reference_changes(
    settings: Settings, inputs: Sequence[Message], engine: Engine | None = None
) -> list[dict[str, Any]]:
    """Changes the pure engine publishes for ``inputs`` (default: the rule segmenters only)."""
    if engine is None:
        engine = Engine(settings, [FrequencySegmenter(settings), LifecycleSegmenter(settings)])
    _, steps = engine_run(settings, inputs, engine)
    return [change for _, out in steps for change in out.changes]


def topic_of(settings: Settings, kind: str) -> str:
    return {
        "click": settings.topic_clickstream,
        "purchase": settings.topic_purchases,
        "consent": settings.topic_consent,
        "profile": settings.topic_profiles,
    }[kind]


class Feeder:
    """Produce messages in order at ``rate`` per second from a background task."""

    def __init__(self, bootstrap: str, settings: Settings, messages: Sequence[Message],
                 rate: float = 100.0) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.messages = list(messages)
        self.rate = rate
        self.sent = 0
        self.gate = len(self.messages)  # messages at index >= gate wait until it opens
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)
        await producer.start()
        try:
            started, base = time.monotonic(), 0
            for i, (kind, key, value) in enumerate(self.messages):
                if i >= self.gate:
                    while i >= self.gate:
                        await asyncio.sleep(0.02)
                    started, base = time.monotonic(), i
                await producer.send_and_wait(topic_of(self.settings, kind), value, key=key)
                self.sent = i + 1
                delay = started + (i + 1 - base) / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            await producer.stop()

    def start(self) -> Feeder:
        self.task = asyncio.create_task(self._run())
        return self

    async def until(self, n: int) -> None:
        """Wait until ``n`` messages were acknowledged by the broker."""
        while self.sent < n:
            assert self.task is not None
            if self.task.done():
                self.task.result()
                if self.sent < n:
                    raise AssertionError(f"feeder stopped at {self.sent} < {n}")
            await asyncio.sleep(0.02)

    async def done(self) -> None:
        assert self.task is not None
        await self.task


async def first_purchases(bootstrap: str, settings: Settings, ids: Sequence[str]) -> None:
    """A purchase at ``T0`` for each of ``ids`` (murmur2 keys), then wait until a running
    worker has published each one's customer-segments record."""
    from kafka_helpers import produce
    async with Tail(bootstrap, settings.topic_segments) as segments:
        await produce(bootstrap, settings.topic_purchases,
                      [_event("purchase", c, f"{c}-1", T0)[1:] for c in ids])
        assert await segments.until(lambda t: len(t.records) >= len(ids), timeout=60)


async def feed_all(bootstrap: str, settings: Settings, messages: Sequence[Message]) -> None:
    """Produce ``messages`` in order with one producer, as fast as the broker acknowledges."""
    await Feeder(bootstrap, settings, messages, rate=float("inf")).start().done()


class Tail:
    """A group-less reader of an output topic that keeps everything it has read."""

    def __init__(self, bootstrap: str, topic: str, isolation_level: str = "read_committed"):
        self.bootstrap = bootstrap
        self.topic = topic
        self.isolation_level = isolation_level
        self.records: list[tuple[int, int, bytes | None, bytes | None]] = []
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Tail:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level=self.isolation_level,
        )
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in await partitions_of(self.bootstrap,
                                                                            self.topic)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.consumer is not None
        await self.consumer.stop()

    async def poll(self, seconds: float = 0.2) -> int:
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        n = 0
        for _tp, msgs in batch.items():
            for m in msgs:
                self.records.append((m.partition, m.offset, m.key, m.value))
                n += 1
        return n

    def values(self) -> list[Any]:
        return [None if v is None else codec.loads(v) for _, _, _, v in self.records]

    async def until(self, predicate: Any, timeout: float, settle: float = 0.0) -> bool:
        """Poll until ``predicate(self)`` holds (then ``settle`` more seconds) or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.poll()
            if predicate(self):
                end = time.monotonic() + settle
                while time.monotonic() < end:
                    await self.poll()
                return True
        return False


def change_ids(values: list[Any], segmenters: Sequence[str] = RULE_SEGMENTERS) -> list[str]:
    return [v["change_id"] for v in values if v is not None and v.get("segmenter") in segmenters]



@dataclasses.dataclass
class KillRun:
    """What :func:`kill_scenario` observed."""

    reference: dict[str, dict[str, Any]]
    values: list[Any]
    worker: WorkerProc
    complete: bool
    # with ``term``: per stop, seconds from SIGTERM to exit, the exit code, and the input
    # the worker left uncommitted (> 0: it was stopped with a backlog)
    stops: list[tuple[float, int | None, int]] = dataclasses.field(default_factory=list)

    @property
    def expected(self) -> set[str]:
        return set(self.reference)

    @property
    def got(self) -> list[str]:
        return change_ids(self.values)

    @property
    def missing(self) -> set[str]:
        return self.expected - set(self.got)

    @property
    def extra(self) -> set[str]:
        return set(self.got) - self.expected

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(self.got).values())

    def counts(self) -> str:
        """The run in one line: reference changes, published, missing, duplicates."""
        return (f"changes={len(self.expected)} published={len(self.got)} "
                f"missing={len(self.missing)} duplicates={self.duplicates}")

    def mismatched(self) -> list[str]:
        """Published change ids whose record differs from the reference's (features aside).

        A change re-published after a crash must be the very same change.
        """
        bad = []
        for v in self.values:
            ref = self.reference.get(v["change_id"]) if v["segmenter"] in RULE_SEGMENTERS else None
            if ref is not None and describe(v) != describe(ref):
                bad.append(v["change_id"])
        return bad

    def assert_exact(self) -> None:
        """Every reference change was published, no other, each with the reference content."""
        lost = sorted(describe(self.reference[i]) for i in self.missing)
        assert self.complete and not self.missing, f"{len(self.missing)} changes lost: {lost[:8]}"
        unexpected = self.extra  # once: the property builds two sets
        extra = sorted(describe(v) for v in self.values if v["change_id"] in unexpected)
        assert not unexpected, f"{len(unexpected)} changes the reference never made: {extra[:6]}"
        bad = set(self.mismatched())
        shown = [(describe(v), describe(self.reference[v["change_id"]]))
                 for v in self.values if v["change_id"] in bad][:6]
        assert not bad, f"{len(bad)} mismatched (published, reference): {shown}"


CHANGE_KEYS = ("customer_id", "segmenter", "sequence", "from_segment", "to_segment", "trigger",
               "event_time")


def describe(change: dict[str, Any]) -> tuple[Any, ...]:
    """What must be equal between a published change and the reference's (features aside)."""
    return tuple(change.get(k) for k in CHANGE_KEYS)


async def kill_scenario(
    settings: Settings,
    workers: Workers,
    bootstrap: str,
    kills: Sequence[tuple[float, bool]],
    messages: Sequence[Message],
    rate: float = 30.0,
    isolation_level: str = "read_committed",
    timeout: float = 90.0,
    term: bool = False,
) -> KillRun:
    """Feed ``messages``; kill -9 the worker per ``kills`` = [(busy seconds, wipe data dir)].

    ``term``: stop it with SIGTERM instead (what an orchestrator sends), timed in
    :attr:`KillRun.stops` with the input it left uncommitted (SIGKILL after 60 s).

    The stream is cut into ``len(kills) + 1`` chunks; a chunk starts flowing
    when the (re)started worker is ready, and the kill comes after the busy time
    *and* once the worker has published something since: so every kill hits a
    worker that is consuming and publishing, with more of the stream to come.
    Returns once every expected change arrived (then 3 s more) or after ``timeout``.
    """
    reference = {c["change_id"]: c for c in reference_changes(settings, messages)
                 if c["segmenter"] in RULE_SEGMENTERS}
    expected = set(reference)
    worker = workers.new(f"{settings.app_id}-worker", settings)
    await worker.start().ready()
    chunk = len(messages) // (len(kills) + 1)
    stops: list[tuple[float, int | None, int]] = []
    async with Tail(bootstrap, settings.topic_changes, isolation_level) as tail:
        feeder = Feeder(bootstrap, settings, messages, rate=rate)
        feeder.gate = chunk
        feeder.start()
        for n, (busy_s, wipe) in enumerate(kills):
            seen_before = len(tail.records)
            end = time.monotonic() + busy_s
            while time.monotonic() < end or len(tail.records) == seen_before:
                await tail.poll(0.1)
                assert time.monotonic() < end + 30, "worker published nothing"
            if term:
                began = time.monotonic()
                code = await asyncio.to_thread(worker.stop, 60.0)
                took = time.monotonic() - began
                left = await group_lag(bootstrap, settings.app_id,
                                       [settings.topic_clickstream, settings.topic_purchases])
                stops.append((took, code, sum(left.values())))
            else:
                worker.kill9()
            assert feeder.sent < len(messages), "kill after the stream was done"
            if wipe:
                shutil.rmtree(settings.data_dir)
            await worker.start().ready(timeout=90)
            assert "Recovery complete" in worker.run_log()
            feeder.gate = len(messages) if n == len(kills) - 1 else (n + 2) * chunk
        await feeder.done()
        complete = await tail.until(
            lambda t: set(change_ids(t.values())) >= expected, timeout=timeout, settle=3.0
        )
    return KillRun(reference, tail.values(), worker, complete, stops)
