"""Shared test helpers: the JSON Schemas (``streamseg/schemas/``), the contract of every topic."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from streamseg.resources import SCHEMA_DIR

SCHEMAS = SCHEMA_DIR


def schema_errors(name: str, record: Any) -> list[str]:
    """Messages of every violation of ``streamseg/schemas/<name>.schema.json`` by ``record``."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]


@pytest.fixture
def assert_schema() -> Callable[[str, Any], None]:
    """``assert_schema(name, record)`` fails the test with every violation listed."""

    def check(name: str, record: Any) -> None:
        errors = schema_errors(name, record)
        assert not errors, f"{name} schema violations: {errors} in {record!r}"

    return check


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of Prometheus' ``promtool`` (Debian package ``prometheus``).

    Missing: the test fails under CI (``CI`` set; ``scripts/test`` installs it there)
    and is skipped on a developer machine.
    """
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool not found: apt-get install -y prometheus (scripts/test does "
                        "this under CI)")
        pytest.skip("promtool not installed (apt-get install -y prometheus)")
    return path
