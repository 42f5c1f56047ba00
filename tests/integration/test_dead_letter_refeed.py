"""Dead letters are re-fed once fixed: ``streamseg dead-letters`` writes their original
inputs as JSON lines and ``streamseg produce`` sends them again (an operator's run: the
docs said dead letters "can be re-fed once fixed" and no command did it).

A valid purchase sent with no key (kcat without ``-K``) is dead-lettered ``key_mismatch``;
exported and produced again (keyed by its customer id) it is applied. A body that is not
JSON is counted, not written.
"""

from __future__ import annotations

import io
from pathlib import Path

from kafka_helpers import produce
from worker_proc import T0, Tail, Workers, _event, make_settings

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.console import export_dead_letters, produce_file


async def test_a_dead_letter_exported_and_produced_again_is_applied(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("refeed", tmp_path / "data", broker_url, partitions=4)
    await ensure_topics(settings)
    b = bootstrap_servers
    _, _, body = _event("purchase", "nokey", "p1", T0)
    _, _, later = _event("purchase", "nokey", "p2", T0 + 3600)
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("refeed-worker", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_dead_letters) as dead, \
                Tail(b, settings.topic_changes) as changes:
            # the later purchase first, on another partition: exported in event-time order
            await produce(b, settings.topic_purchases, [(None, later)], partition=3)
            await produce(b, settings.topic_purchases, [(None, body), (b"junk", b"{")],
                          partition=0)
            assert await dead.until(lambda t: len(t.values()) >= 3, timeout=60, settle=1.0)
            assert sorted(d["reason"] for d in dead.values()) == [
                "key_mismatch", "key_mismatch", "not_json"]
            assert changes.values() == []

            out = io.StringIO()
            counts = await export_dead_letters(settings, out, idle_s=2.0)
            assert counts == {("key_mismatch", True): 2, ("not_json", False): 1}
            assert [codec.loads(line)["event_id"] for line in out.getvalue().splitlines()] == [
                "p1", "p2"]
            path = tmp_path / "fixed.jsonl"
            path.write_text(out.getvalue())
            only = io.StringIO()
            assert await export_dead_letters(settings, only, {"not_json"}, idle_s=2.0) == {
                ("not_json", False): 1}
            assert only.getvalue() == ""

            assert await produce_file(settings, path) == 2
            assert await changes.until(
                lambda t: any(v.get("customer_id") == "nokey" and v["segmenter"] == "frequency"
                              for v in t.values()), timeout=60)
        assert w.crashes() == []
