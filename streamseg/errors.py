"""One exception root for real faults.

Bad input is *not* an exception in streamseg: validation returns values
(:class:`streamseg.engine.validate.Invalid`). Exceptions are for faults the
caller cannot route around: bad configuration, a corrupt snapshot, a CLI
input file that cannot be read.
"""

from __future__ import annotations


class StreamsegError(Exception):
    """Root of every exception raised by streamseg."""


class ConfigError(StreamsegError):
    """A ``STREAMSEG_*`` setting is missing or malformed."""


class SnapshotError(StreamsegError):
    """A model or state snapshot cannot be decoded."""


class ContractError(StreamsegError):
    """A segmenter broke the engine contract (e.g. a ``due`` time not after the one asked)."""


class InputFileError(StreamsegError):
    """A CLI input file has a bad line, or cannot be read at all (``line`` None).

    Examples
    --------
    >>> str(InputFileError("events.jsonl", 3, "ts", "not a date-time"))
    'events.jsonl:3: field ts: not a date-time'
    >>> str(InputFileError("/nonexistent.jsonl", None, None, "No such file or directory"))
    '/nonexistent.jsonl: No such file or directory'
    """

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        where = f"field {field}: " if field else ""
        at = path if line is None else f"{path}:{line}"
        super().__init__(f"{at}: {where}{message}")


class AudienceFileError(ConfigError):
    """A bad audiences file (``STREAMSEG_AUDIENCES_FILE``): one ``FILE:LINE`` line.

    >>> str(AudienceFileError("a.json", 7, "cart", "unknown feature 'x'"))
    "a.json:7: audience cart: unknown feature 'x'"
    >>> str(AudienceFileError("a.json", 1, None, "invalid JSON: Expecting value"))
    'a.json:1: invalid JSON: Expecting value'
    >>> str(AudienceFileError("/etc", None, None, "cannot read the audiences file: Is a directory"))
    '/etc: cannot read the audiences file: Is a directory'
    """

    def __init__(self, path: str, line: int | None, audience: str | None, message: str) -> None:
        self.path = path
        self.line = line
        self.audience = audience
        self.message = message
        where = f"audience {audience}: " if audience else ""
        at = path if line is None else f"{path}:{line}"
        super().__init__(f"{at}: {where}{message}")
