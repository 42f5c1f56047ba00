"""The README's examples are what the code prints (they went stale before)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streamseg.config import Settings
from streamseg.console import describe_change
from streamseg.replay import replay_lines

ROOT = Path(__file__).resolve().parents[2]


def test_readme_demo_lines_come_from_a_replay_of_the_bundled_samples() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"`scripts/demo` prints lines like these.*?```\n(.*?)```", readme, re.S)
    assert block is not None
    shown = block.group(1).splitlines()
    assert len(shown) >= 4
    samples = (ROOT / "streamseg/samples/events.jsonl").read_bytes().splitlines()
    letters: list[dict[str, Any]] = []
    printed = [describe_change(change)
               for change in replay_lines(samples, Settings(), dead_letters=letters.append)]
    assert [line for line in shown if line not in printed] == []
    assert shown == sorted(shown, key=printed.index)  # in the replay's order


def test_readme_documents_the_demo_ports() -> None:
    readme = (ROOT / "README.md").read_text()
    demo = (ROOT / "scripts/demo").read_text()
    assert 'KAFKA_PORT="${DEMO_KAFKA_PORT:-9092}"' in demo
    assert "`DEMO_KAFKA_PORT` (default 9092)" in readme
    assert "`DEMO_KAFKA_PORT` + 1, so 9093 by default" in readme


def test_readme_rfm_grid_is_segment_of() -> None:
    from streamseg.engine.segmenters.rfm import segment_of

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\s*\| ([1-5]) \| (`\w+`(?: \| `\w+`){4}) \|$", readme, re.M)
    assert [int(r) for r, _ in rows] == [5, 4, 3, 2, 1]
    for r, cells in rows:
        assert [c.strip("` ") for c in cells.split("|")] == [
            segment_of(int(r), fm) for fm in range(1, 6)]
