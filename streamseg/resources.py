"""Files shipped inside the package: the topic schemas and the bundled sample events.

They are package data (``streamseg/schemas/``, ``streamseg/samples/``), so a
wheel or a Docker image carries them and nothing reads them from a checkout.

Examples
--------
>>> sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))[:2]
['audiences.schema.json', 'clickstream.schema.json']
>>> SAMPLE_EVENTS.name, SAMPLE_EVENTS.is_file()
('events.jsonl', True)
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = PACKAGE_DIR / "schemas"
"""``<name>.schema.json`` (JSON Schema 2020-12), the contract of every topic."""
SAMPLE_DIR = PACKAGE_DIR / "samples"
SAMPLE_EVENTS = SAMPLE_DIR / "events.jsonl"
"""Seeded simulator output (10 customers, 200 days, a few invalid events) for the demo."""
SAMPLE_TRUTH = SAMPLE_DIR / "truth.json"
"""``{customer_id: persona}`` of :data:`SAMPLE_EVENTS`."""
