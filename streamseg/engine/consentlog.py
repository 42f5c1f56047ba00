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
  Against grants a withdrawal or erasure dated more than :data:`UNDATED_S` behind the
  event time reading had reached when it was applied counts from that time (a device
  whose clock was reset dates it 1970-01-01; a consent copy carries the time its original
  was applied at); a nearer one keeps its date (:func:`counted_from`).

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

from streamseg.engine.events import RESTRICTIVE
from streamseg.engine.features import CustomerState

GRANT = "consent_granted"
WITHDRAWAL = "consent_withdrawn"
ERASURE = "erasure_requested"
TRIMMED = "trimmed"  # older records were dropped: consent before this time is unknown
# a withdrawal or erasure dated further than this behind the latest event time read is
# taken as undated (a device whose clock was reset: 1970, 2000) and counts from that time
# against grants; a nearer one (a late producer, a topic read behind another in a backlog)
# keeps its date, so a real re-grant dated after it still applies (review 33, ops 33b)
UNDATED_S = 30 * 86_400.0
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
    withdrawal or erasure as ``[ts, kind, counted]``, ``counted`` the time it counts from
    against grants (:func:`counted_from` of ``applied``, the event time that reading had
    reached when it was applied; None: ``ts``).

    A grant right after a grant joins its record, ``[first, kind, latest]``, and a
    withdrawal after a withdrawal or erasure, or an erasure after an erasure, is not
    recorded: they would change nothing for :func:`held` (the earlier one counts from the
    later time; a grant run's latest time is what a restriction dated inside it is
    recorded again after). A
    withdrawal or erasure is in force from its date, or from ``applied`` if that is
    earlier (stamped ahead by a device clock); dated before a recorded grant (it applies
    all the same), it is recorded again right after that grant, counting from it.
    Beyond :data:`KEPT` withdrawals and grants the oldest ones go (never the latest
    withdrawal or erasure), and a :data:`TRIMMED` record at the latest time dropped says
    that consent before it is unknown (:func:`held`: not consented).

    >>> record(record([[0.0, "consent_withdrawn", 0.0]], 5.0, "consent_granted"), 1.0,
    ...        "consent_withdrawn")
    [[0.0, 'consent_withdrawn', 1.0], [5.0, 'consent_granted', 5.0], \
[5.0, 'consent_withdrawn', 5.0]]
    >>> record(record([], 5.0, "consent_granted"), 7.0, "consent_granted")
    [[5.0, 'consent_granted', 7.0]]
    >>> log = []
    >>> for t in range(KEPT + 2):
    ...     log = record(record(log, 2.0 * t, "consent_withdrawn"), 2.0 * t + 1, "consent_granted")
    >>> log[0], len(log)
    ([35.0, 'trimmed'], 33)
    """
    out = [list(r) for r in log]
    if kind == GRANT:
        at = bisect_right([float(r[0]) for r in out], ts)
        if at and out[at - 1][1] == GRANT:  # a run of grants is one record: [first, kind,
            out[at - 1][2:] = [max(_third(out[at - 1]), ts)]  # latest] (re-sent grants)
            return out
        out.insert(at, [ts, kind, ts])
    else:
        counted = counted_from(ts, applied)
        start = read_at(ts, applied)
        _put(out, start, kind, counted)
        # applied over a grant of a later date (restrictions always apply): in force after
        # that grant too, so inputs dated after it are not profiled (nor folded in), and
        # that grant read again is stale
        later = max((_third(r) for r in out if r[1] == GRANT and _third(r) > start),
                    default=None)
        if later is not None:
            _put(out, later, kind, max(counted, later))
    latest = max((i for i, r in enumerate(out) if r[1] in RESTRICTIVE),
                 key=lambda i: _third(out[i]), default=None)
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


def _put(out: list[list[Any]], ts: float, kind: str, counted: float) -> None:
    """Insert the restriction ``[ts, kind, counted]`` in time order, unless the record before
    it is a restriction that already covers it (a withdrawal after any, an erasure after an
    erasure: re-sent opt-outs): that one then counts from ``counted`` if later."""
    at = bisect_right([float(r[0]) for r in out], ts)
    prev = out[at - 1] if at else None
    if prev is not None and prev[1] in RESTRICTIVE and (kind == WITHDRAWAL or prev[1] == ERASURE):
        prev[2:] = [max(_third(prev), counted)]
        return
    out.insert(at, [ts, kind, counted])


def read_at(ts: float, applied: float | None) -> float:
    """The time a consent record stamped ``ts``, read when reading had reached
    ``applied``, is in force from: its stamp, at most ``applied`` (a device clock ahead
    stamps it in the future; None: ``ts``)."""
    return ts if applied is None else min(ts, applied)


def counted_from(ts: float, applied: float | None) -> float:
    """The time a withdrawal or erasure dated ``ts``, applied when reading had reached
    ``applied``, counts from against grants: ``applied`` if it is more than
    :data:`UNDATED_S` later (the date is not to be trusted), else ``ts``.

    >>> counted_from(0.0, 1.7e9), counted_from(1.7e9 - 86_400.0, 1.7e9)
    (1700000000.0, 1699913600.0)
    """
    return applied if applied is not None and applied - ts > UNDATED_S else ts


def _third(r: list[Any]) -> float:
    """A record's third field: the latest time of a grant run, the time a restriction
    counts from against grants (its own time: records of two fields)."""
    return float(r[2] if len(r) > 2 else r[0])


def restricted_at(state: CustomerState) -> float | None:
    """The latest time a withdrawal or erasure counts from against a grant
    (:func:`counted_from`; None: none)."""
    return max((_third(r) for r in log_of(state) if r[1] in RESTRICTIVE), default=None)


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
