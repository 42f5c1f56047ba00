"""The input contract as read from ``streamseg/schemas/``: each stream's schema, the attributes.

``streamseg/schemas/*.schema.json`` (JSON Schema 2020-12) are the contract of every
topic. Here they are read: :data:`INPUT_SCHEMAS` names the schema of each input stream,
:func:`load_schema` reads one (the :class:`~streamseg.engine.validate.Validator` compiles
them), and the profile schema's attribute catalogue is derived from it:
:func:`known_attributes`, :func:`attribute_kinds` (the JSON kinds and closed names an
audience condition compares with, :mod:`streamseg.engine.audienceconditions`) and
:func:`is_custom_attribute` (any other attribute is ``x_<name>``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from streamseg.engine.events import Kind
from streamseg.resources import SCHEMA_DIR

INPUT_SCHEMAS: dict[Kind, str] = {
    "click": "clickstream",
    "purchase": "purchase",
    "consent": "consent",
    "profile": "customer-profile",
}

_X_NAME = re.compile(r"x_[a-z0-9_]{1,62}")


def load_schema(name: str) -> dict[str, Any]:
    """Read ``streamseg/schemas/<name>.schema.json``.

    >>> load_schema("consent")["title"]
    'Consent event'
    """
    with (SCHEMA_DIR / f"{name}.schema.json").open("rb") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def _attribute_props() -> dict[str, Any]:
    """The profile schema's attribute definitions, by name."""
    props: dict[str, Any] = load_schema(
        INPUT_SCHEMAS["profile"])["properties"]["attributes"]["properties"]
    return props


def known_attributes() -> frozenset[str]:
    """The attribute names the profile schema types (any other must be ``x_<name>``).

    >>> sorted(known_attributes())[:4]
    ['age_band', 'birth_year', 'city', 'country']
    """
    return frozenset(_attribute_props())


def attribute_kinds() -> dict[str, tuple[frozenset[str], tuple[str, ...] | None]]:
    """Known attribute -> (the JSON kinds it holds: text, number, boolean; its names if
    the schema closes them, else None), from the profile schema.

    >>> kinds = attribute_kinds()
    >>> kinds["household_size"][0], kinds["loyalty_member"][0], kinds["marital_status"][1][:2]
    (frozenset({'number'}), frozenset({'boolean'}), ('single', 'married'))
    """
    names = {"string": "text", "integer": "number", "number": "number", "boolean": "boolean"}
    out: dict[str, tuple[frozenset[str], tuple[str, ...] | None]] = {}
    for name, prop in _attribute_props().items():
        if "enum" in prop:
            values = tuple(v for v in prop["enum"] if v is not None)
            out[name] = (frozenset("text" if isinstance(v, str) else "boolean"
                                   if isinstance(v, bool) else "number" for v in values),
                         values)
        else:
            types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            out[name] = (frozenset(names[t] for t in types if t != "null"), None)
    return out


def is_custom_attribute(name: str) -> bool:
    """Whether ``name`` is a valid custom attribute name, ``x_<name>``.

    >>> is_custom_attribute("x_vip"), is_custom_attribute("vip")
    (True, False)
    """
    return _X_NAME.fullmatch(name) is not None
