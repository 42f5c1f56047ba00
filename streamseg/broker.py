"""Is the broker there? A metadata probe, and a bounded wait with backoff at start.

The worker (and ``produce``, ``watch``, ``simulate --to-kafka``) call
:func:`wait_for_broker` before anything else: an unreachable broker is retried
with exponential backoff for ``STREAMSEG_BROKER_WAIT_S``, printing one line per
attempt, then the command stops with :class:`BrokerUnavailable` (one line,
exit code 3) instead of a traceback. ``streamseg check`` uses :func:`probe`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiokafka.admin import AIOKafkaAdminClient

from streamseg.config import Settings
from streamseg.errors import StreamsegError

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
PROBE_TIMEOUT_S = 10.0


class BrokerUnavailable(StreamsegError):
    """No broker answered within ``STREAMSEG_BROKER_WAIT_S``."""


def backoff(wait_s: float, first: float = FIRST_DELAY_S,
            cap: float = MAX_DELAY_S) -> Iterator[float]:
    """Delays between attempts: doubling from ``first``, capped, summing to at most ``wait_s``.

    >>> list(backoff(10.0))
    [0.5, 1.0, 2.0, 4.0, 2.5]
    >>> list(backoff(0.0))
    []
    """
    spent, delay = 0.0, first
    while spent < wait_s:
        step = min(delay, cap, wait_s - spent)
        yield step
        spent += step
        delay *= 2


@contextmanager
def quiet_kafka_logs() -> Iterator[None]:
    """Silence aiokafka's own connection errors while we report the attempt ourselves."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, without repeating the type.

    >>> describe_error(ValueError("bad")), describe_error(OSError())
    ('ValueError: bad', 'OSError')
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


async def probe(settings: Settings) -> list[str]:
    """The topic names the broker reports (one metadata round trip); raises on failure."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                request_timeout_ms=int(PROBE_TIMEOUT_S * 1000))
    with quiet_kafka_logs():
        try:
            await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
            return sorted(await asyncio.wait_for(admin.list_topics(), PROBE_TIMEOUT_S))
        finally:
            await admin.close()


async def wait_for_broker(settings: Settings, say: Callable[[str], None],
                          wait_s: float | None = None) -> list[str]:
    """:func:`probe` until it answers, for ``wait_s`` (default ``STREAMSEG_BROKER_WAIT_S``).

    Raises
    ------
    BrokerUnavailable
        When the time is up; the message names ``STREAMSEG_BROKER``.
    """
    budget = settings.broker_wait_s if wait_s is None else wait_s
    where = settings.bootstrap_servers
    started = time.monotonic()
    delays = backoff(budget)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await probe(settings)
        except Exception as exc:  # any failure to reach it: report, back off, retry
            reason = describe_error(exc)
        delay = next(delays, None)
        if delay is None:
            waited = time.monotonic() - started
            tried = f"retrying for {budget:g} s" if budget > 0 else "no retries asked for"
            raise BrokerUnavailable(
                f"STREAMSEG_BROKER: no Kafka broker reachable at {where} after {attempt} "
                f"attempt(s) in {waited:.0f} s ({tried}); last error {reason}"
            )
        say(f"broker {where} not reachable (attempt {attempt}: {reason}); "
            f"retrying in {delay:.1f} s")
        await asyncio.sleep(delay)
