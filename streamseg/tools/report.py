"""The terminal table of ``streamseg quality`` (the ``--json`` output is :func:`measure`'s dict).

Examples
--------
>>> print(table([["a", 1], ["bb", 2.5]], ["name", "n"]))
name  n
----  ---
a     1
bb    2.5
"""

from __future__ import annotations

from typing import Any

from streamseg.engine.events import format_ts
from streamseg.engine.segmenters.clusterhold import MIN_SESSIONS


def table(rows: list[list[Any]], header: list[str]) -> str:
    """Left-aligned columns, a dashed rule under the header."""
    cells = [[str(h) for h in header]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pct(a: dict[str, Any], pct: float | None) -> str | float | None:
    """An agreement figure; ``(both abstain)`` after it while the reference abstains."""
    if not a.get("abstained") or pct is None:
        return pct
    return f"{pct} (both abstain)" if pct == 100.0 else f"{pct} (reference abstains)"


def _percent(rate: float | None) -> str:
    """A rate as a percentage with two decimals (``-``: nothing to rate).

    >>> _percent(0.2983), _percent(None)
    ('29.83', '-')
    """
    return "-" if rate is None else f"{100 * rate:.2f}"


def _days(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s ({seconds / 86400:.2f} d)"


def rejected(q: dict[str, Any]) -> list[str]:
    """Why lines were dead-lettered: the count per reason and the first few lines.

    >>> print("\\n".join(rejected({"file": "f.jsonl", "dead_letter_reasons": {"schema_invalid": 2},
    ...     "first_dead_letters": [{"line": 3, "reason": "schema_invalid", "field": "ts",
    ...                             "message": "bad time"}]})))
    dead letters by reason: schema_invalid 2
      f.jsonl:3: field ts: bad time (schema_invalid)
    """
    reasons = q.get("dead_letter_reasons") or {}
    if not reasons:
        return []
    out = ["dead letters by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.items())]
    for d in q.get("first_dead_letters", []):
        where = f"field {d['field']}: " if d.get("field") else ""
        out.append(f"  {q.get('file', '<input>')}:{d['line']}: {where}{d['message']} "
                   f"({d['reason']})")
    return out


def render(q: dict[str, Any], confusion: bool = True) -> str:
    """The quality report as text."""
    if "agreement" not in q:
        return "\n".join([f"no accepted events ({q['lines']} lines, {q['dead_letters']} dead "
                          "letters)", *rejected(q)])
    out = [
        f"clock {format_ts(q['clock'])}: {q['customers']} customers, {q['lines']} lines, "
        f"{q['dead_letters']} dead letters, {q['excluded_no_consent']} excluded (no consent); "
        f"verdicts from {q['verdict_source']}",
        *rejected(q),
        "",
        "Agreement with the batch reference (published label vs reference at the clock)",
        table([[k, a["compared"], a["agree"], _pct(a, a["pct"]), _pct(a, a.get("verdict_pct"))]
               for k, a in q["agreement"].items()],
              ["segmenter", "customers", "agree", "agree %", "raw verdict agree %"]),
    ]
    value_why = q.get("value_model", {}).get("abstains")
    if value_why:
        out.append(f"value abstains (no label): {value_why}.")
    why = q.get("rfm_warmup", {}).get("reason")
    if why:
        out.append(f"RFM abstains: {why}. The reference labels nobody; agree = the customers "
                   "the engine leaves unlabelled too.")
    if confusion:
        for name, a in q["agreement"].items():
            pubs = sorted({p for row in a["confusion"].values() for p in row})
            rows = [[r, *[a["confusion"][r].get(p, 0) for p in pubs]]
                    for r in sorted(a["confusion"])]
            out += ["", f"{name}: reference (rows) x published (columns)",
                    table(rows, ["reference", *pubs])]
    out += ["", "Engine figures",
            table([[name, s["labels"], s["stale"], s["held"],
                    q["flaps"].get(name, {}).get("changes"),
                    _percent(q["flaps"].get(name, {}).get("rate")),
                    _percent(q["flaps"].get(name, {}).get("rate_2w")),
                    q["changes_per_customer"].get(name),
                    q["untrained"].get(name, {}).get("changes"),
                    q["untrained"].get(name, {}).get("current")]
                   for name, s in q["stale"].items()],
                  ["segmenter", "labels", "stale", "held", "changes", "flap %",
                   "flap % (2x window)", "changes/customer", "untrained changes",
                   "untrained now"]),
            "labels: customers with a label at the clock; the others have none yet (cluster: "
            f"fewer than {MIN_SESSIONS} sessions; rfm and value: no purchase, or the warm-up; "
            "channel: no visit)",
            "stale: published label differs from the engine's current verdict for no "
            "documented reason; held: differs because a margin or dwell keeps it (by design)",
            "changes: moves from one label to another (a customer's first label is not one); "
            "flap %: of those, reverted within STREAMSEG_FLAP_WINDOW_S (14 days by default)",
            "", "Purchase -> the change it earned (event time)",
            table([[k, v["n"], _days(v["p50"]), _days(v["p99"]), _days(v["max"])]
                   for k, v in q["latency_s"].items()],
                  ["segmenter", "moves", "p50", "p99", "max"]),
            "", "Purchase -> a move held by hysteresis at the purchase (a demotion within a "
            "band or margin; not counted above)",
            table([[k, v["n"], _days(v["p50"]), _days(v["p99"]), _days(v["max"])]
                   for k, v in q.get("held_latency_s", {}).items()],
                  ["segmenter", "moves", "p50", "p99", "max"]),
            "moves not published: " + (", ".join(
                f"{k}={v}" for k, v in sorted(q["moves_not_published"].items())) or "none")]
    return "\n".join(out)
