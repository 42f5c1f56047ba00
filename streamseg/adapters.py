"""The only place that touches private Faust / aiokafka internals.

Each function below needs something the libraries do not expose publicly;
``tests/unit/test_adapters.py`` checks every attribute used here against the
installed versions (Faust 0.15.3, aiokafka 0.14.0) and fails loudly when one
moves, so an upgrade breaks a unit test instead of the worker.

* :func:`use_event` -- Faust reads and writes a table on the partition of the
  *current event* (a task-local context variable). A batch holds events of
  several partitions; before touching a customer's state the agent makes the
  event of that customer's partition current. Faust has no public setter.
* :func:`kafka_client` -- the aiokafka producer inside Faust's producer: the agent
  hands its outputs to it as whole record batches (aiokafka's public
  ``create_batch`` / ``send_batch``), not one ``Topic.send`` per record.
* :func:`drain` -- hand Faust's buffered table-changelog records to the Kafka
  client (Faust's own flush gives up after 0.1 s without progress).
* :func:`withhold_ack` -- an event held back by the rebalance gate must not be
  acknowledged: Faust would count its offset towards the next commit.
"""

from __future__ import annotations

import weakref
from typing import Any

from faust import streams as _faust_streams


def use_event(event: Any) -> None:
    """Make ``event`` Faust's current event (table reads and writes use its partition)."""
    _faust_streams._current_event.set(weakref.ref(event))


def kafka_client(producer: Any) -> Any | None:
    """The started aiokafka producer of Faust's producer (None: not started, or a stand-in)."""
    return getattr(producer, "_producer", None)


async def drain(producer: Any) -> None:
    """Hand every record in Faust's producer buffer (table changelog) to the Kafka client."""
    buffer = producer.buffer
    while buffer.size:
        await buffer.flush()


def withhold_ack(event: Any) -> None:
    """Keep Faust from acknowledging ``event`` (its offset must not be committed)."""
    event.message.acked = True
