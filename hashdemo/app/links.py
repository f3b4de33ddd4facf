"""Links that restore a view: the search tab's (the query by split and id, theta, L, K, the box, the
relevance rule) and the
compose tab's (each slot's image by split and id, the operators), and which tab is open.

The query string is input like an upload: every value is checked at the boundary, and a value that
does not fit is dropped with a sentence saying which and why; the rest of the link still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from hashdemo.app.state import SearchState
from hashdemo.checks import number_in_range
from hashdemo.data.label_ops import OPERATORS
from hashdemo.service.relevance import DEFAULT_RELEVANCE, relevance_rule

TABS = ("search", "compose", "benchmarks", "how")  # the `tab` values, in the page's order


@dataclass(frozen=True)
class LinkedView:
    source: tuple[str, int] | None  # (split, id) of the query
    params: tuple[float, int, int] | None  # theta, L, K
    box: tuple[int, int, int, int] | None
    problems: tuple[str, ...]  # what was dropped, and why
    relevance: str | None = None  # the relevance rule's name (service.relevance.RELEVANCE)


def view_link(state: SearchState) -> str:
    """The query string of the view `state` shows ("" query part for an uploaded image)."""
    theta, top_l, n_coarse = state.params
    fields = {} if state.source is None else {"split": state.source[0], "id": state.source[1]}
    fields.update(theta=theta, L=top_l, K=n_coarse)
    if state.box is not None:
        fields["box"] = ",".join(map(str, state.box))
    if state.relevance != DEFAULT_RELEVANCE:
        fields["rel"] = state.relevance
    return "?" + urlencode(fields)


def parse_link(query: Mapping[str, str], engine, k_max: int) -> LinkedView:
    """The view a link's query string asks for, each part checked (engine: sizes and ranges; `k_max`:
    the K slider's top, so a linked K never puts the slider out of its range)."""
    problems, source, params, box, rel = [], None, None, None, None
    if "id" in query or "split" in query:
        split = query.get("split", "query")
        try:
            engine.picture(split, _integer(query.get("id")))
            source = (split, int(query["id"]))
        except (ValueError, KeyError) as error:
            problems.append(f"the link's query was not used: {error}")
    if any(key in query for key in ("theta", "L", "K")):
        params, dropped = _params(query, engine, k_max)
        problems += dropped
    if "box" in query:
        try:
            box = _box(query["box"], engine.image_size)
        except ValueError as error:
            problems.append(f"the link's box was not used: {error}")
    if "rel" in query:
        try:
            relevance_rule(query["rel"])
            rel = query["rel"]
        except ValueError as error:
            problems.append(f"the link's rel was not used: {error}")
    return LinkedView(source, params, box, tuple(problems), rel)


def _params(query: Mapping[str, str], engine, k_max: int) -> tuple[tuple[float, int, int], list[str]]:
    """theta, L and K from a link, each checked on its own: a bad one is named and its default kept."""
    defaults = {"theta": engine.defaults["theta"], "L": engine.defaults["L"], "K": engine.defaults["K"]}
    checks = {  # each value alone, the others at their defaults
        "theta": lambda v: engine.check_params(v, defaults["L"], defaults["K"])[0],
        "L": lambda v: engine.check_params(defaults["theta"], _integer(v), defaults["K"])[1],
        "K": lambda v: engine.check_params(
            defaults["theta"],
            defaults["L"],
            number_in_range("K (coarse candidates)", v, 1, k_max, integer=True),
        )[2],
    }
    values, problems = dict(defaults), []
    for name, check in checks.items():
        if name not in query:
            continue
        try:
            value = check(query[name])
            values[name] = value
        except ValueError as error:
            problems.append(f"the link's {name} was not used: {str(error).rstrip('.')}")
    return (values["theta"], values["L"], values["K"]), problems


def sentence(problem: str) -> str:
    """A problem as one sentence: a capital first letter and one full stop."""
    problem = problem.rstrip(". ")
    return problem[:1].upper() + problem[1:] + "."


def _integer(value) -> int | str:
    """A whole number from text ("12"), else the text itself, for the range check to refuse."""
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _box(text: str, size: int) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"a box is four whole numbers top,left,bottom,right (got {text!r})")
    top, left, bottom, right = (int(p) for p in parts)
    if not (0 <= top <= bottom < size and 0 <= left <= right < size):
        raise ValueError(f"a box lies inside the {size}x{size} image, top <= bottom and left <= right")
    return top, left, bottom, right


@dataclass(frozen=True)
class LinkedComposition:
    operators: tuple[str, ...]  # one, or two for a chain with slot C
    sources: tuple[tuple[str, int], ...]  # (split, id) of slots A, B (and C)
    problems: tuple[str, ...]


def composition_link(sources: tuple, operators: tuple[str, ...]) -> str:
    """The query string of a composition, "" when a slot holds an image that is not a dataset image."""
    if not sources or any(source is None for source in sources):
        return ""
    fields = {"tab": "compose"}
    fields.update({slot: f"{split}:{index}" for slot, (split, index) in zip("abc", sources, strict=False)})
    fields["op"] = operators[0]
    if len(operators) > 1:
        fields["then"] = operators[1]
    return "?" + urlencode(fields)


def parse_composition(query: Mapping[str, str], engine) -> LinkedComposition | None:
    """The composition a link asks for (a=split:id, b=..., op=..., optional c=... with then=...), each
    part checked; None when the link names no slot. A bad part drops the composition with a sentence."""
    if not any(key in query for key in ("a", "b", "c", "op", "then")):
        return None
    try:
        chain = "c" in query or "then" in query
        slots = ("a", "b", "c") if chain else ("a", "b")
        sources = tuple(_source(slot, query.get(slot), engine) for slot in slots)
        operators = tuple(query.get(key, "") for key in (("op", "then") if chain else ("op",)))
        for name in operators:
            if name not in OPERATORS:
                raise ValueError(f"an operator is one of {', '.join(OPERATORS)} (got {name!r})")
    except ValueError as error:
        return LinkedComposition((), (), (f"the link's composition was not used: {error}",))
    return LinkedComposition(operators, sources, ())


def linked_tab(query: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the tab a link opens, or None; a problem, or None). A composition opens the compose tab."""
    tab = query.get("tab")
    if tab is None:
        return ("compose" if any(key in query for key in ("a", "b", "op")) else None), None
    if tab not in TABS:
        return None, f"the link's tab was not used: a tab is one of {', '.join(TABS)} (got {tab!r})"
    return tab, None


def _source(slot: str, text: str | None, engine) -> tuple[str, int]:
    """(split, id) from "query:12" or "gallery:5", checked against the split's size."""
    if text is None:
        raise ValueError(f"slot {slot.upper()} is missing (give {slot}=query:ID or {slot}=gallery:ID)")
    split, _, index = text.partition(":")
    engine.picture(split, _integer(index))  # says which split and range are valid
    return split, int(index)
