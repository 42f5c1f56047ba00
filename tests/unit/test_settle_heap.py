"""``worker.settle_heap``: what is alive when the worker starts leaves full collections."""

from __future__ import annotations

import gc

from streamseg.worker import settle_heap


class Node:
    """A container object the cycle collector tracks."""


def test_objects_alive_at_start_are_frozen_and_no_longer_walked() -> None:
    alive = Node()
    assert gc.is_tracked(alive)
    try:
        frozen = settle_heap()
        assert frozen == gc.get_freeze_count() > 0
        # a full collection walks the tracked objects of generations 0-2 only
        assert not any(obj is alive for obj in gc.get_objects())
        later = Node()  # created after: collected as usual
        assert any(obj is later for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is alive for obj in gc.get_objects())
