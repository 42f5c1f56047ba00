"""A batch that raises ends the worker; the restarted worker loses nothing.

A fault inside a batch (an output the broker never acknowledges, a bug in the
engine) leaves the batch's events taken but neither applied nor acknowledged.
Faust's default supervisor restarted the agent on the same stream, which never
hands those events over again, while later events moved the customers' input
positions past them: re-read after a restart, they were skipped as
``out_of_order`` and their changes were lost for good (a code review found it by
driving the real ``Ingest``). The agent's supervisor now crashes the worker; a
new process re-reads from the committed offset.

The fault is injected from outside the package: a ``sitecustomize`` on the first
run's ``PYTHONPATH`` makes ``Engine.ingest`` raise for one event.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from worker_proc import (
    RULE_SEGMENTERS,
    Tail,
    Workers,
    change_ids,
    feed_all,
    make_settings,
    reference_changes,
    story,
)

from streamseg.app import ensure_topics

FAULT = '''
from streamseg.engine import processor

_ingest = processor.Engine.ingest


def ingest(self, state, event, *args, **kwargs):
    if event.event_id == {event_id!r}:
        raise RuntimeError("injected fault")
    return _ingest(self, state, event, *args, **kwargs)


processor.Engine.ingest = ingest
'''


async def test_a_batch_that_raises_ends_the_worker_and_its_events_are_applied_after_restart(
    tmp_path: Path, broker_url: str, bootstrap_servers: str, assert_schema  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings("fault", tmp_path / "data", broker_url, partitions=2)
    await ensure_topics(settings)
    messages = story(customers=16, events_per_customer=6, seed=5)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAULT.format(event_id="c1-e3"))
    expected = {c["change_id"] for c in reference_changes(settings, messages)
                if c["segmenter"] in RULE_SEGMENTERS}
    assert len(expected) > 60
    with Workers(broker_url, tmp_path) as workers:
        faulty = workers.new("faulty", settings, PYTHONPATH=str(site))
        await faulty.start().ready()
        await feed_all(bootstrap_servers, settings, messages)
        deadline = time.monotonic() + 60
        while faulty.alive():
            assert time.monotonic() < deadline, "the worker went on after the fault"
            await asyncio.sleep(0.2)
        assert faulty.proc is not None and faulty.proc.returncode != 0
        assert "injected fault" in faulty.run_log()
        healthy = workers.new("healthy", settings)
        await healthy.start().ready(timeout=90)
        async with Tail(bootstrap_servers, settings.topic_changes) as tail:
            complete = await tail.until(
                lambda t: set(change_ids(t.values())) >= expected, timeout=90, settle=3.0)
        got = set(change_ids(tail.values()))
        assert complete, f"{len(expected - got)} changes lost"
        assert got == expected
        assert "out_of_order" not in healthy.run_log()
        for value in tail.values():
            if value is not None:
                assert_schema("segment-change", value)
