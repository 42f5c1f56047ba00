"""A customer's consent records by event time: which consent held when.

Consent events and the customer's other events arrive on different topics (and, with
two producer partitioners, as copies from another partition), so they are not read in
the order they happened. The state keeps the consent records it applied,
``CustomerState.consent_log``: ``[event time, type]`` pairs in event-time order (equal
times in the order read), at most :data:`KEPT` withdrawals and grants (the oldest go
first; erasures are always kept). From it:

* :func:`held`: whether an input of a given event time may be profiled: the latest
  consent record at or before its time is a grant (or there is none), and no erasure
  is dated after it (the erased person's data never comes back into a fresh profile);
* :func:`stale_grant`: a grant dated at or before the latest withdrawal or erasure is
  not applied (``stale_consent``): a withdrawal or erasure always applies, whatever its
  date, and no date tells for sure which of the two came first, so the safe side wins.
  Against grants a withdrawal or erasure counts from the event time reading had reached
  when it was applied, if later than its own date (a device whose clock was reset dates
  it 1970-01-01; a consent copy carries the time its original was applied at).

Examples
--------
>>> from streamseg.engine.features import CustomerState
>>> s = CustomerState.new("c1", 0.0)
>>> s.consent_log = record([], 10.0, "consent_withdrawn")
>>> s.consent_log = record(s.consent_log, 20.0, "consent_granted")
>>> [held(s, t) for t in (5.0, 10.0, 15.0, 20.0, 25.0)]
[True, False, False, True, True]
>>> stale_grant(s, 10.0), stale_grant(s, 11.0)
(True, False)
>>> s.consent_log = record(s.consent_log, 30.0, "erasure_requested")
>>> held(s, 25.0)  # before an erasure: erased
False
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

from streamseg.engine.features import CustomerState

GRANT = "consent_granted"
WITHDRAWAL = "consent_withdrawn"
ERASURE = "erasure_requested"
RESTRICTIVE = (WITHDRAWAL, ERASURE)
TRIMMED = "trimmed"  # older records were dropped: consent before this time is unknown
KEPT = 32  # withdrawals and grants kept per customer (erasures are all kept)


def log_of(state: CustomerState) -> list[list[Any]]:
    """The customer's consent records; an erasure marker saved before the log was kept
    counts its erasure at its ``first_seen`` (the erasure's time)."""
    if state.consent_log or not state.erased:
        return state.consent_log
    return [[state.first_seen, ERASURE]]


def record(log: list[list[Any]], ts: float, kind: str,
           applied: float | None = None) -> list[list[Any]]:
    """``log`` with the record ``[ts, kind]`` in event-time order (a new list); a
    withdrawal or erasure as ``[ts, kind, applied]``, ``applied`` the event time that
    reading had reached when it was applied (at least ``ts``; None: ``ts``).

    Beyond :data:`KEPT` withdrawals and grants the oldest ones go (never the latest
    withdrawal or erasure), and a :data:`TRIMMED` record at the latest time dropped says
    that consent before it is unknown (:func:`held`: not consented).

    >>> record(record([[5.0, "consent_granted"]], 1.0, "consent_withdrawn"), 5.0, "x")
    [[1.0, 'consent_withdrawn', 1.0], [5.0, 'consent_granted'], [5.0, 'x', 5.0]]
    >>> log = []
    >>> for t in range(KEPT + 2):
    ...     log = record(log, float(t), "consent_granted")
    >>> log[0], len(log)
    ([1.0, 'trimmed'], 33)
    """
    out = [list(r) for r in log]
    at = bisect_right([float(r[0]) for r in out], ts)
    if kind == GRANT:
        out.insert(at, [ts, kind])
    else:
        out.insert(at, [ts, kind, ts if applied is None else max(ts, applied)])
    latest = max((i for i, r in enumerate(out) if r[1] in RESTRICTIVE),
                 key=lambda i: _applied(out[i]), default=None)
    dropped = None
    while sum(1 for r in out if r[1] in (GRANT, WITHDRAWAL)) > KEPT:
        i = next(i for i, r in enumerate(out) if r[1] in (GRANT, WITHDRAWAL) and i != latest)
        dropped = max(float(out[i][0]), dropped if dropped is not None else -math.inf)
        out.pop(i)
        if latest is not None and i < latest:
            latest -= 1
    if dropped is not None:
        dropped = max([dropped, *(float(r[0]) for r in out if r[1] == TRIMMED)])
        out = [r for r in out if r[1] != TRIMMED]
        out.insert(bisect_right([float(r[0]) for r in out], dropped), [dropped, TRIMMED])
    return out


def _applied(r: list[Any]) -> float:
    return float(r[2] if len(r) > 2 else r[0])


def restricted_at(state: CustomerState) -> float | None:
    """The latest time a withdrawal or erasure counts from against a grant: the event time
    reading had reached when it was applied (its own date, if later; None: none)."""
    return max((_applied(r) for r in log_of(state) if r[1] in RESTRICTIVE), default=None)


def stale_grant(state: CustomerState, ts: float) -> bool:
    """Whether a grant at event time ``ts`` is dated at or before the latest withdrawal or
    erasure (it is then not applied)."""
    last = restricted_at(state)
    return last is not None and ts <= last


def held(state: CustomerState, ts: float) -> bool:
    """Whether consent held at event time ``ts`` by the log: the latest record at or before
    ``ts`` is a grant or there is none, and no erasure is dated after ``ts``."""
    kind = None
    for r in log_of(state):
        t, k = float(r[0]), r[1]
        if t <= ts:
            kind = k
        elif k in (ERASURE, TRIMMED):
            return False
    return kind is None or kind == GRANT


def admits(state: CustomerState | None, ts: float) -> bool:
    """Whether an input of event time ``ts`` may be profiled in ``state`` (None: a new
    customer): consent is not withdrawn now, and it :func:`held` at ``ts``."""
    return state is None or not (state.withdrawn or (state.consent_log and not held(state, ts)))


def kept(state: CustomerState | None, ts: float) -> bool:
    """Whether an input of event time ``ts`` that :func:`admits` refuses is still folded
    into the profile, unpublished: the customer is withdrawn now (not erased) and consent
    held at ``ts`` (the input was made before the withdrawal and read after it: a
    re-grant's notice then lists the segments with it)."""
    return (state is not None and state.withdrawn and not state.erased
            and bool(state.consent_log) and held(state, ts))


def applies(state: CustomerState | None, ts: float) -> bool:
    """Whether an input of event time ``ts`` goes into ``state``'s profile: :func:`admits`,
    or :func:`kept` (folded in, unpublished). The batch references ask it, before the
    engine applies the input."""
    return admits(state, ts) or kept(state, ts)
