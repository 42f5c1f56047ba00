"""Dead-letter records: the original bytes, why they were rejected, and where they came from.

Examples
--------
>>> from streamseg.engine.validate import Invalid
>>> rec = dead_letter(Invalid("not_json", "malformed JSON"), "clickstream", 0, 7, b"c1", b"{")
>>> rec["reason"], rec["source"], rec["key_b64"], rec["value_b64"]
('not_json', {'topic': 'clickstream', 'partition': 0, 'offset': 7}, 'YzE=', 'ew==')
"""

from __future__ import annotations

import base64
from typing import Any

from streamseg.engine.validate import Invalid


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dead_letter(
    invalid: Invalid,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> dict[str, Any]:
    """The ``streamseg-dead-letters`` value (see ``streamseg/schemas/dead-letter.schema.json``)."""
    return {
        "reason": invalid.reason,
        "message": invalid.message,
        "field": invalid.field,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "key_b64": None if key is None else _b64(key),
        "value_b64": _b64(value or b""),
    }
