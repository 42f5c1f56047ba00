"""Where the lookup API finds a customer's state on this worker (transport edge).

The key Faust's router hashes (:func:`route_key`), the state-table key
(:func:`table_key`), and which of the key's values on the partitions this worker
owns is the customer (:func:`held`, :func:`stored`): :mod:`streamseg.web` routes
requests between workers and answers from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamseg import adapters, codec
from streamseg.engine.validate import pseudonymise
from streamseg.punctuator import COPY, PARTITION


def route_key(customer_id: str) -> str:
    """The key Faust's router hashes to find a customer's partition: the raw id.

    It is the message key producers partition input by (before any
    pseudonymisation); if state placement ever moves to another key, this is
    the one place to change.
    """
    return customer_id


def table_key(secret: str, customer_id: str) -> bytes:
    """The state-table key of a raw customer id (its keyed hash when pseudonymising).

    >>> table_key("", "c1"), table_key("k", "42")
    (b'c1', b'7955074f51169f1f64053d8b2c403d7f')
    """
    return (pseudonymise(secret, customer_id) if secret else customer_id).encode()


def profiled(data: dict[str, Any]) -> bool:
    """Whether a state (table value) holds behaviour: events, segments or attributes, not
    only consent (a value from before ``events`` was recorded counts).

    >>> profiled({"events": 0, "segments": {}, "attributes": {}, "withdrawn": True})
    False
    >>> profiled({"events": 2}), profiled({"customer_id": "c"})
    (True, True)
    """
    return bool(data.get("events", 1) or data.get("segments") or data.get("attributes"))


def held(values: Iterable[tuple[int, bytes | None]], routed: int) -> dict[str, Any] | None:
    """The customer's state among its key's table values on this worker's partitions.

    ``values`` are (partition, raw value or None), one per partition this worker
    owns (never a standby's); ``routed`` is the partition Faust's router names
    (murmur2). A consent copy's marker (``COPY``: the customer was never seen on
    that partition) is no customer; nor is a value that records another
    partition than the one it was read from (a ``memory://`` store has one dict
    for all partitions); a value from before partitions were recorded counts on
    the routed partition only. Of several states (a customer fed through two
    partitioners), the routed partition's wins, else the lowest partition's.

    >>> real = codec.dumps({"customer_id": "c", PARTITION: 2})
    >>> copy = codec.dumps({"customer_id": "c", PARTITION: 0, COPY: True})
    >>> held([(0, copy), (1, None), (2, real)], routed=0)[PARTITION]
    2
    >>> held([(0, copy), (1, None)], routed=0) is None
    True
    >>> held([(1, real)], routed=1) is None  # the value is partition 2's
    True
    >>> held([(3, codec.dumps({"customer_id": "c"}))], routed=3)  # written before partitions
    {'customer_id': 'c'}

    Nor is an empty profile that only a ``consent_granted`` created (no event, no segment,
    no attribute, not withdrawn): a consent producer with another partitioner than the
    events' left one on the routed partition, and the lookup answered it, an empty
    profile, instead of searching for the customer's real one.

    >>> granted = codec.dumps({"customer_id": "c", PARTITION: 0, "events": 0,
    ...                        "segments": {}, "attributes": {}, "withdrawn": False})
    >>> held([(0, granted), (2, real)], routed=0)[PARTITION], held([(0, granted)], routed=0)
    (2, None)
    """
    found: list[tuple[bool, int, dict[str, Any]]] = []
    for p, raw in values:
        if raw is None:
            continue
        data = codec.loads(raw)
        if data.get(COPY) or not (profiled(data) or data.get("withdrawn")):
            continue
        recorded = data.get(PARTITION)
        if recorded != p and (isinstance(recorded, int) or p != routed):
            continue
        found.append((p != routed, p, data))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def stored(table: Any, key: bytes, partitions: Iterable[int], routed: int
           ) -> dict[str, Any] | None:
    """The customer's state (table value, decoded) under ``key`` on ``partitions`` (the
    ones this worker owns), each read on its own (:func:`adapters.partition_get`), as
    :func:`held` picks it; None if none of them holds the customer.

    Not ``table.get(key)``: outside an event Faust's RocksDB store answers from the
    first partition database that holds the key, which may be a consent copy's marker
    (after a withdrawal and a grant: an empty profile where the customer has one).
    """
    return held(((p, adapters.partition_get(table, p, key)) for p in sorted(partitions)),
                routed)
