"""JSON encoding in one place (orjson).

Every byte that enters or leaves streamseg goes through :func:`loads` and
:func:`dumps`, so the wire format has a single owner.

Examples
--------
>>> dumps({"b": 1, "a": [1.5, None]})
b'{"a":[1.5,null],"b":1}'
>>> loads(b'{"x": 2}')
{'x': 2}
"""

from __future__ import annotations

from typing import Any

import orjson

DecodeError = orjson.JSONDecodeError

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact JSON bytes with sorted keys (deterministic)."""
    return orjson.dumps(obj, option=_OPTS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON bytes; raises :data:`DecodeError` on malformed input."""
    return orjson.loads(data)
