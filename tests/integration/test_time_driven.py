"""Time-driven transitions on the real broker: an idle customer lapses with no new event.

The worker's Faust timer reads the event-time clock (highest event time seen
less the allowed lateness), sends ticks for the customers due by then, and the
engine publishes each move at its own due time. Whatever the tick timing, the
idle customer's changes must equal what the pure engine computes for the same
events followed by one tick at the final watermark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from worker_proc import T0, Message, Tail, Workers, _event, engine_run, feed_all, make_settings

from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.processor import Engine


def reference(settings: Settings, inputs: list[Message], customer: str) -> list[dict[str, Any]]:
    engine = Engine(settings)
    states, steps = engine_run(settings, inputs, engine)
    assert len(steps) == len(inputs)  # every input is valid
    changes = [c for _, out in steps for c in out.changes]
    watermark = max(ev.ts for ev, _ in steps) - settings.allowed_lateness_s
    state = states[customer]
    assert state is not None
    changes += engine.tick(state, watermark).changes
    return [c for c in changes if c["customer_id"] == customer]


@pytest.mark.asyncio
async def test_idle_customer_lapses_on_the_event_clock(
    broker_url: str, bootstrap_servers: str, tmp_path: Path
) -> None:
    settings = make_settings("timed", tmp_path / "data", broker_url, tick_interval_s=0.5,
                             allowed_lateness_s=3600.0, partitions=2)
    # "quiet" buys once; "busy" browses every 10 days for 220 days and moves the clock
    inputs = [_event("purchase", "quiet", "q1", T0)]
    inputs += [_event("click", "busy", f"b{i}", T0 + 10 * i * DAY + 60) for i in range(23)]
    expected = reference(settings, inputs, "quiet")
    assert [(c["segmenter"], c["to_segment"], c["trigger"]) for c in expected] == [
        ("frequency", "one_time", "event"),
        ("lifecycle", "new", "event"),
        ("channel", "web", "event"),
        ("lifecycle", "active", "clock"),
        ("lifecycle", "at_risk", "clock"),
        ("frequency", "lapsed", "clock"),
        ("lifecycle", "lapsed", "clock"),
    ]
    # at its due time (180 days + 1 s): no blanket dwell any more (issue 8)
    assert expected[-1]["event_time"] == format_ts(T0 + 180 * DAY + 1)

    with Workers(broker_url, tmp_path) as workers:
        worker = workers.new("w1", settings)
        worker.start()
        await worker.ready()
        await feed_all(bootstrap_servers, settings, inputs)
        async with Tail(bootstrap_servers, settings.topic_changes) as tail:

            def quiet(t: Tail) -> list[dict[str, Any]]:
                return [v for v in t.values() if v["customer_id"] == "quiet"]

            done = await tail.until(lambda t: len(quiet(t)) >= len(expected), timeout=90,
                                    settle=2.0)
            got = quiet(tail)
        assert done, got
        assert got == expected  # same ids, segments, due times and features as the engine
        ticks = await _count(bootstrap_servers, settings.topic_ticks)
        assert ticks >= 1
        assert worker.crashes() == []


async def _count(bootstrap: str, topic: str) -> int:
    async with Tail(bootstrap, topic) as tail:
        await tail.until(lambda t: False, timeout=2.0)
        return sum(1 for v in tail.values() if v is not None and "now" in v)
