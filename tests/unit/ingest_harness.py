"""Drive the real :class:`streamseg.ingest.Ingest` glue without Kafka.

The transport is replaced by the smallest possible stand-in: the state table
is a dict, each output topic is a list of ``(key, value)`` pairs, and a
message is a namespace with the attributes Faust gives an ``EventT``. Every
line of ``Ingest.handle`` and of the ``Applier`` it hands each message to
(validation, screening, engine, emit, metrics) is the production code.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import jsonschema
from prometheus_client import CollectorRegistry

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.config import Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.ingest import Ingest
from streamseg.metrics import OUTCOMES, STREAMS, Metrics
from streamseg.resources import SCHEMA_DIR

SCHEMAS = SCHEMA_DIR


def schema_errors(name: str, record: Any) -> list[str]:
    """Every violation of ``streamseg/schemas/<name>.schema.json`` (python ``jsonschema``)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]


@dataclass
class Sink:
    """An output topic: records every ``send``."""

    sent: list[tuple[bytes | None, bytes | None]] = field(default_factory=list)

    partitions: list[int | None] = field(default_factory=list)
    headers: list[dict[str, bytes] | None] = field(default_factory=list)

    async def send(
        self, key: bytes | None = None, value: bytes | None = None,
        partition: int | None = None, headers: dict[str, bytes] | None = None,
    ) -> asyncio.Future[None]:
        """Record the message; like Faust, return a future that resolves on delivery."""
        self.sent.append((key, value))
        self.partitions.append(partition)
        self.headers.append(headers)
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def values(self) -> list[Any]:
        return [None if v is None else codec.loads(v) for _, v in self.sent]


@dataclass
class FakeApp:
    settings: Settings
    state: dict[bytes, bytes] = field(default_factory=dict)
    clocks: dict[bytes, bytes] = field(default_factory=dict)
    changes: Sink = field(default_factory=Sink)
    segments: Sink = field(default_factory=Sink)
    dead_letters: Sink = field(default_factory=Sink)
    ticks: Sink = field(default_factory=Sink)
    # the Faust app: its producer buffer (always drained here), the consumer's
    # generation and assignment (none: the batch leaves the gate to on_assigned, and
    # consent first has nothing to wait for)
    app: Any = field(default_factory=lambda: SimpleNamespace(
        producer=SimpleNamespace(buffer=SimpleNamespace(size=0)),
        consumer=SimpleNamespace(assignment=set), consumer_generation_id=1))


class FakeEvent(SimpleNamespace):
    """A Faust event stand-in (weak-referenceable, like ``faust.Event``)."""


class Harness:
    """One worker's ``Ingest`` over in-memory topics, with its own metrics registry."""

    def __init__(self, settings: Settings, wall: Callable[[], float] = time.time) -> None:
        self.app = FakeApp(settings)
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.ingest = Ingest(cast(Streamseg, self.app), Engine(settings, wall=wall), self.metrics)
        self.topics = {
            "click": settings.topic_clickstream,
            "purchase": settings.topic_purchases,
            "consent": settings.topic_consent,
            "profile": settings.topic_profiles,
            "tick": settings.topic_ticks,
        }
        self.offset = 0
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def message(self, stream: str, key: bytes | None, value: bytes | None,
                partition: int = 0, headers: Any = None) -> SimpleNamespace:
        """An event of ``stream`` (click, purchase, consent, tick) at the next offset."""
        msg = SimpleNamespace(topic=self.topics[stream], partition=partition,
                              offset=self.offset, key=key, value=value, headers=headers,
                              acked=False)
        self.offset += 1
        return FakeEvent(message=msg)

    def send(self, stream: str, key: bytes | None, value: bytes | None,
             partition: int = 0) -> None:
        """Hand one message of ``stream`` to the agent (a batch of one)."""
        self.batch([self.message(stream, key, value, partition)])

    def batch(self, events: list[SimpleNamespace]) -> None:
        """Hand ``events`` to the agent as one batch."""
        self.loop.run_until_complete(self.ingest.handle_batch(events))

    def send_json(self, stream: str, record: dict[str, Any]) -> None:
        self.send(stream, str(record["customer_id"]).encode(), codec.dumps(record))

    def count(self, stream: str, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "streamseg_events_consumed_total", {"stream": stream, "outcome": outcome}
        )
        return value or 0.0

    def counts(self) -> dict[tuple[str, str], float]:
        return {
            (s, o): self.count(s, o) for s in STREAMS for o in OUTCOMES if self.count(s, o)
        }

    def total(self) -> float:
        return sum(self.counts().values())

    def state(self, customer_id: str) -> CustomerState | None:
        raw = self.app.state.get(customer_id.encode())  # one dict: all partitions
        return None if raw is None else CustomerState.from_dict(codec.loads(raw))
