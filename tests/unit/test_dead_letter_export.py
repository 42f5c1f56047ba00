"""``streamseg dead-letters``: what it writes for letters a review found it mishandled.

The dead-letter topic is stood in for by a consumer that hands over the letters once
(the export on a real broker: tests/integration/test_dead_letter_refeed.py).
"""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace
from typing import Any

import pytest

from streamseg import codec, console
from streamseg.config import Settings
from streamseg.engine.deadletters import dead_letter
from streamseg.engine.validate import Invalid, Validator
from streamseg.replay import Replayer


def export(monkeypatch: pytest.MonkeyPatch, letters: list[dict[str, Any]]) -> list[bytes]:
    """The lines ``export_dead_letters`` writes for ``letters`` (one partition of the topic)."""

    class Topic:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.handed = False

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

        async def getmany(self, timeout_ms: int = 0) -> dict[int, list[Any]]:
            if self.handed:
                await asyncio.sleep(timeout_ms / 1000)
                return {}
            self.handed = True
            return {0: [SimpleNamespace(value=codec.dumps(x)) for x in letters]}

    monkeypatch.setattr(console, "AIOKafkaConsumer", Topic)
    out = io.StringIO()
    asyncio.run(console.export_dead_letters(Settings(), out, (), idle_s=0.3))
    return [line.encode() for line in out.getvalue().splitlines()]


def test_a_letter_with_a_numeric_time_is_exported_with_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``"ts": 1767225600`` (epoch seconds, a common schema_invalid letter) crashed the
    export with an AttributeError and left the output file empty: it goes last now."""
    settings = Settings()
    epoch = codec.dumps({"event_id": "e1", "customer_id": "c1", "type": "page_view",
                         "ts": 1767225600})
    result = Validator(settings).check("click", b"c1", epoch)
    assert isinstance(result, Invalid) and result.reason == "schema_invalid"
    fx = codec.dumps({"event_id": "e2", "customer_id": "c2", "order_id": "o", "amount": 1.0,
                      "currency": "XYZ", "ts": "2026-01-01T00:00:00Z"})
    lines = export(monkeypatch, [
        dead_letter(result, settings.topic_clickstream, 0, 5, b"c1", epoch),
        dead_letter(Invalid("unsupported_currency", "XYZ", "currency"),
                    settings.topic_purchases, 1, 6, b"c2", fx)])
    assert lines == [fx, epoch]


def test_a_withdrawal_dated_outside_the_window_is_exported_after_the_grant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key-less grant, then a key-less withdrawal from a device whose clock was reset
    (1969): both dead-lettered. The worker would have applied the withdrawal at its event
    clock, after the grant; sorted by its own date it went first, and re-fed, the grant
    profiled the customer again."""
    settings = Settings()
    grant = codec.dumps({"event_id": "g1", "customer_id": "c1", "type": "consent_granted",
                         "ts": "2026-11-17T00:00:00Z"})
    withdraw = codec.dumps({"event_id": "w1", "customer_id": "c1",
                            "type": "consent_withdrawn", "ts": "1969-06-01T00:00:00Z"})
    keyless = Invalid("key_mismatch", "message has no key", "customer_id")
    lines = export(monkeypatch, [
        dead_letter(keyless, settings.topic_consent, 0, 10, None, grant),
        dead_letter(keyless, settings.topic_consent, 1, 11, None, withdraw)])
    assert lines == [grant, withdraw]
    replay = Replayer(settings)
    replay.feed(codec.dumps({"event_id": "e1", "customer_id": "c1", "order_id": "o1",
                             "amount": 5.0, "currency": "EUR", "ts": "2026-11-01T00:00:00Z"}))
    for line in lines:
        replay.feed(line)
    assert replay.states["c1"].withdrawn


GRANT = {"event_id": "g1", "customer_id": "c1", "type": "consent_granted"}
WITHDRAW = {"event_id": "w1", "customer_id": "c1", "type": "consent_withdrawn"}
KEYLESS = Invalid("key_mismatch", "message has no key", "customer_id")


def withdrawn_after(lines: list[bytes]) -> bool:
    """Whether c1 (a buyer) is withdrawn after ``lines`` are replayed in that order."""
    replay = Replayer(Settings())
    replay.feed(codec.dumps({"event_id": "e1", "customer_id": "c1", "order_id": "o1",
                             "amount": 5.0, "currency": "EUR", "ts": "2026-11-01T00:00:00Z"}))
    for line in lines:
        assert not isinstance(replay.feed(line), Invalid)
    return replay.states["c1"].withdrawn


@pytest.mark.parametrize(("first", "then"), [
    # a grant, then a withdrawal from a device whose clock was reset inside the window
    ({**GRANT, "ts": "2026-11-17T00:00:00Z"}, {**WITHDRAW, "ts": "2000-01-01T00:00:00Z"}),
    # a withdrawal dated before the window (applied at the clock), then a grant
    ({**WITHDRAW, "ts": "1969-06-01T00:00:00Z"}, {**GRANT, "ts": "2026-11-17T00:00:00Z"}),
    # key-less, on two partitions: the worker met the withdrawal (10:05) before the grant
    ({**WITHDRAW, "ts": "2026-11-17T10:05:00Z"}, {**GRANT, "ts": "2026-11-17T10:00:00Z"}),
])
def test_a_re_fed_grant_never_undoes_a_withdrawal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    first: dict[str, Any], then: dict[str, Any],
) -> None:
    """The engine applies every withdrawal it reads, whatever its date (a grant only if it is
    not older than the latest withdrawal), and neither
    the dates nor the order the worker met key-less letters in tell the real order for sure
    (reviews 31: a reset clock, a 1969 date, partitions read at different lags). A
    customer's grants are written before their withdrawals: re-fed, the customer ends
    withdrawn, and the export names the customers whose order it changed."""
    settings = Settings()
    lines = [codec.dumps(first), codec.dumps(then)]
    letters = [dead_letter(KEYLESS, settings.topic_consent, p, 10 + p, None, line)
               for p, line in enumerate(lines)]
    exported = export(monkeypatch, letters)
    assert sorted(exported) == sorted(lines)
    assert [codec.loads(x)["type"] for x in exported] == ["consent_granted",
                                                          "consent_withdrawn"]
    assert withdrawn_after(exported)
    warned = "withdrawal or erasure dated before one of their consent grants" in (
        capsys.readouterr().err)
    dated = {codec.loads(x)["type"]: codec.loads(x)["ts"] for x in lines}
    assert warned == (dated["consent_withdrawn"] < dated["consent_granted"])  # reordered


def test_a_letter_whose_type_is_not_a_string_is_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``"type": ["page_view"]`` (schema_invalid) made the export raise TypeError
    (unhashable list) and write nothing (review 31)."""
    settings = Settings()
    body = codec.dumps({"event_id": "e1", "customer_id": "c1", "type": ["page_view"],
                        "ts": "2026-01-01T00:00:00Z"})
    result = Validator(settings).check("click", b"c1", body)
    assert isinstance(result, Invalid)
    assert export(monkeypatch, [dead_letter(result, settings.topic_clickstream, 0, 1, b"c1",
                                            body)]) == [body]


def test_a_consent_letter_with_an_unreadable_time_keeps_its_place_among_consent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A grant with ``"ts": 1795000000`` (schema_invalid), then a key-less withdrawal: the
    grant's unreadable time sorted it last, after the withdrawal it preceded, so once fixed
    and re-fed it undid the withdrawal (review 31)."""
    settings = Settings()
    grant = codec.dumps({**GRANT, "ts": 1795000000})
    bad = Validator(settings).check("consent", b"c1", grant)
    assert isinstance(bad, Invalid) and bad.reason == "schema_invalid"
    withdraw = codec.dumps({**WITHDRAW, "ts": "2026-11-20T00:00:00Z"})
    letters = [dead_letter(bad, settings.topic_consent, 0, 10, b"c1", grant),
               dead_letter(KEYLESS, settings.topic_consent, 1, 11, None, withdraw)]
    assert export(monkeypatch, letters) == [grant, withdraw]


def test_an_unknown_reason_is_refused_before_any_broker_is_asked(
    tmp_path: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    """``--reason bogus`` printed "no dead letters with reason bogus" and exited 0."""
    from streamseg.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["dead-letters", "--out", str(tmp_path / "x.jsonl"), "--reason", "bogus"])
    assert stop.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_produce_names_a_missing_file_before_it_asks_the_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A new user's ``produce /nonexistent.jsonl`` retried the broker for 60 s and then
    said only that the broker was not reachable."""
    from streamseg.__main__ import main

    monkeypatch.setenv("STREAMSEG_BROKER", "kafka://127.0.0.1:1")  # nothing listens there
    assert main(["produce", "/nonexistent.jsonl"]) == 2
    assert capsys.readouterr().err == (
        "streamseg: error: /nonexistent.jsonl: No such file or directory\n")
