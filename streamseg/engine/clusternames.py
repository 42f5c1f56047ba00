"""Cluster names: the words of a centroid, told apart from a live cluster, still true.

A centroid in scaled (z-score) space is named by its most notable features
(:func:`describe`: "frequent buyer, high basket, desktop"); a name is still true
of a centroid while each word's feature stays on its side (:func:`holds`, with a
band); a centroid named afresh with the words of another live cluster's name gets
a comparison with that cluster (:func:`apart`: "rare buyer, smaller baskets than
c6"), which must stay true of the two centroids (:func:`still_apart`). Used by
:func:`~streamseg.engine.clusterrefit.next_model`; the model itself is
:class:`~streamseg.engine.model.ClusterModel`.

Examples
--------
>>> describe({"purchases": 1.2, "basket": 0.9, "mobile": -0.7, "views": 0.1})
'frequent buyer, high basket, desktop'
>>> describe({"purchases": 1.2, "cart": -2.0}, active=["purchases"])
'frequent buyer'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# feature -> (word when high, word when low); the order is the vector order
FEATURES: dict[str, tuple[str, str]] = {
    "purchases": ("frequent buyer", "rare buyer"),
    "basket": ("high basket", "low basket"),
    "browse": ("browses often", "seldom browses"),
    "views": ("many views per visit", "few views per visit"),
    "cart": ("converts carts", "abandons carts"),
    "mobile": ("mobile", "desktop"),
    "recency": ("long inactive", "recently active"),
}
NAMES = tuple(FEATURES)
# feature -> (word when higher, word when lower) than another cluster called alike
# (:func:`apart`): relative to that cluster, not to the population
COMPARE: dict[str, tuple[str, str]] = {
    "purchases": ("buys more", "buys less"),
    "basket": ("larger baskets", "smaller baskets"),
    "browse": ("browses more", "browses less"),
    "views": ("more views per visit", "fewer views per visit"),
    "cart": ("converts more carts", "converts fewer carts"),
    "mobile": ("more mobile", "more desktop"),
    "recency": ("less recently active", "more recently active"),
}
OTHER = "other"  # apart's last resort: "rare buyer, other than c6"
COMPARE_WORDS = frozenset([*(word for pair in COMPARE.values() for word in pair), OTHER])
BUYER_WORD = FEATURES["purchases"][0]  # never told to a customer who never bought
INACTIVE_WORD = FEATURES["recency"][0]  # never told to a customer seen within the grace
DESCRIBE_Z = 0.5  # |z| from which a feature is worth a word
DESCRIBE_WORDS = 3


def describe(center: Mapping[str, float], active: Iterable[str] | None = None) -> str:
    """A short description of a centroid in scaled (z-score) space (active features only)."""
    allowed = set(NAMES if active is None else active)
    notable = sorted(
        ((abs(z), name, z) for name, z in center.items()
         if name in allowed and abs(z) >= DESCRIBE_Z),
        key=lambda t: (-t[0], t[1]),
    )[:DESCRIBE_WORDS]
    if not notable:
        return "average"
    return ", ".join(FEATURES[name][0 if z > 0 else 1] for _, name, z in notable)


def _sides(table: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, float]]:
    """word -> (feature, side: 1.0 for the first word of its pair, -1.0 for the second)."""
    return {word: (feature, side) for feature, pair in table.items()
            for word, side in zip(pair, (1.0, -1.0), strict=True)}


WORDS = _sides(FEATURES)


def apart(name: str, center: Mapping[str, float], other: Mapping[str, float], other_id: str,
          taken: Iterable[frozenset[str]] = ()) -> str:
    """``name`` (a :func:`describe` of ``center`` with the words of live cluster
    ``other_id``'s name) told apart from that cluster, centred at ``other``: a comparison
    with it on the feature where the two differ most (then the next, while the name's
    words are among ``taken``). Two clusters called alike tell a reader nothing apart (a
    reviewer found "rare buyer" for two clusters holding 218 of 592 Instacart customers).

    >>> apart("rare buyer", {"purchases": -1.0, "basket": -0.3},
    ...       {"purchases": -0.9, "basket": 0.4}, "c6")
    'rare buyer, smaller baskets than c6'
    >>> apart("rare buyer", {"purchases": -1.0, "basket": -0.3},
    ...       {"purchases": -0.9, "basket": 0.4}, "c6",
    ...       taken=[frozenset({"rare buyer", "smaller baskets than c6"})])
    'rare buyer, smaller baskets than c6, buys less than c6'
    >>> apart("rare buyer", {"purchases": -1.0}, {"purchases": -1.0}, "c6")
    'rare buyer, other than c6'
    """
    used = set(taken)
    diffs = sorted(((abs(z - other.get(f, 0.0)), f, z - other.get(f, 0.0))
                    for f, z in center.items() if f in COMPARE), key=lambda t: (-t[0], t[1]))
    for size, feature, d in diffs:
        if size == 0.0:
            break
        name = f"{name}, {COMPARE[feature][0 if d > 0 else 1]} than {other_id}"
        if frozenset(name.split(", ")) not in used:
            return name
    return f"{name}, {OTHER} than {other_id}"  # no difference left to name: still apart


def comparison(word: str) -> bool:
    """Whether ``word`` (of a cluster name) compares with another cluster (:func:`apart`)
    rather than with the population.

    >>> comparison("smaller baskets than c6"), comparison("low basket")
    (True, False)
    """
    head, than, _ = word.partition(" than ")
    return bool(than) and head in COMPARE_WORDS


_COMPARED = _sides(COMPARE)


def still_apart(name: str, center: Mapping[str, float],
                live: Mapping[str, Mapping[str, float]], band: float = 0.0) -> bool:
    """Whether each comparison in ``name`` (:func:`apart`) with a cluster still in ``live``
    (id -> centroid) is still true of ``center``: on its side of that cluster, or at most
    ``band`` z units past it (the hysteresis of a published name). A comparison with an id
    no longer live is history, not checked.

    >>> c6 = {"purchases": -0.9, "basket": 0.4}
    >>> still_apart("rare buyer, smaller baskets than c6", {"basket": -0.3}, {"c6": c6})
    True
    >>> still_apart("rare buyer, smaller baskets than c6", {"basket": 0.8}, {"c6": c6})
    False
    >>> still_apart("rare buyer, smaller baskets than c6", {"basket": 0.5}, {"c6": c6}, 0.25)
    True
    >>> still_apart("rare buyer, smaller baskets than c6", {"basket": 0.8}, {})  # c6 retired
    True
    """
    for word in name.split(", "):
        if not comparison(word):
            continue
        head, _, other_id = word.partition(" than ")
        other = live.get(other_id)
        compared = _COMPARED.get(head)
        if other is None or compared is None:  # an id retired since, or "other than"
            continue
        feature, side = compared
        if (center.get(feature, 0.0) - other.get(feature, 0.0)) * side < -band:
            return False
    return True


def holds(name: str, center: Mapping[str, float], active: Iterable[str] | None = None,
          band: float = 0.0) -> bool:
    """Whether ``name`` (a :func:`describe` of another centroid) is still true of
    ``center``: each of its words' feature active and at least :data:`DESCRIBE_Z`
    less ``band`` on its side ("average": no feature :data:`DESCRIBE_Z` plus ``band``
    from 0; ``band`` is the hysteresis of a published name).

    >>> holds("frequent buyer", {"purchases": 0.8, "mobile": 1.5})
    True
    >>> holds("frequent buyer, desktop", {"purchases": 0.8, "mobile": 1.5})
    False
    >>> holds("average", {"purchases": 0.8})
    False
    >>> holds("frequent buyer", {"purchases": 0.3}, band=0.25)  # 0.3 is not 0.5: 0.25 short
    True
    >>> holds("average", {"purchases": 0.6}, band=0.25)
    True
    >>> holds("rare buyer, smaller baskets than c6", {"purchases": -0.8, "basket": 0.1})
    True
    >>> holds("average, buys more than c2", {"purchases": 0.6}, band=0.25)
    True
    """
    allowed = set(NAMES if active is None else active)
    # a comparison (apart) is relative to another cluster, not to the population: unchecked
    told = [word for word in name.split(", ") if not comparison(word)]
    if told == ["average"]:
        return all(abs(z) < DESCRIBE_Z + band for f, z in center.items() if f in allowed)
    for word in told:
        feature = WORDS.get(word)
        if feature is None or feature[0] not in allowed:
            return False
        if center.get(feature[0], 0.0) * feature[1] < DESCRIBE_Z - band:
            return False
    return True


def title(segment: str, name: str) -> str:
    """The human title of a cluster id.

    >>> title("c3", "frequent buyer, mobile")
    'Cluster c3: frequent buyer, mobile'
    """
    return f"Cluster {segment}: {name}"
