"""The per-customer duplicate filter: the hashes of a customer's latest event ids.

``CustomerState.recent_ids`` (:mod:`streamseg.engine.features`) keeps the
:func:`event_hash` of the customer's latest ``STREAMSEG_DEDUP_WINDOW`` events.
``Engine.apply`` skips an event whose hash is there as a counted ``duplicate`` and
adds each one it applies (:func:`remember_hash`); the edge asks :func:`seen` whether
a re-delivered input was a duplicate (:mod:`streamseg.apply`). Ids are unique per
input stream, so the hash covers the stream and the id.
"""

from __future__ import annotations

import hashlib

from streamseg.engine.features import CustomerState


def event_hash(kind: str, event_id: str) -> int:
    """Stable 63-bit hash of an event's input stream and id, for the duplicate filter.

    Event ids are unique per input stream: a purchase and a click may carry the same
    id (two systems numbering their own records) and are two events.

    >>> event_hash("click", "e1") == event_hash("click", "e1") != event_hash("purchase", "e1")
    True
    """
    digest = hashlib.blake2b(f"{kind}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def seen(state: CustomerState, kind: str, event_id: str) -> bool:
    """Whether the ``kind`` event ``event_id`` is among the recent events of this customer."""
    return event_hash(kind, event_id) in state.recent_ids


def remember(state: CustomerState, kind: str, event_id: str, window: int) -> None:
    """Add the ``kind`` event ``event_id`` to the bounded duplicate filter."""
    remember_hash(state, event_hash(kind, event_id), window)


def remember_hash(state: CustomerState, key: int, window: int) -> None:
    """Add an :func:`event_hash` to the bounded duplicate filter."""
    recent = state.recent_ids
    recent.append(key)
    if len(recent) > window:
        del recent[: len(recent) - window]
