"""A link that restores the search tab's view: the query (by split and id), theta, L, K and the box.

The query string is input like an upload: every value is checked at the boundary, and a value that
does not fit is dropped with a sentence saying which and why; the rest of the link still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from hashdemo.app.state import SearchState


@dataclass(frozen=True)
class LinkedView:
    source: tuple[str, int] | None  # (split, id) of the query
    params: tuple[float, int, int] | None  # theta, L, K
    box: tuple[int, int, int, int] | None
    problems: tuple[str, ...]  # what was dropped, and why


def view_link(state: SearchState) -> str:
    """The query string of the view `state` shows ("" query part for an uploaded image)."""
    theta, top_l, n_coarse = state.params
    fields = {} if state.source is None else {"split": state.source[0], "id": state.source[1]}
    fields.update(theta=theta, L=top_l, K=n_coarse)
    if state.box is not None:
        fields["box"] = ",".join(map(str, state.box))
    return "?" + urlencode(fields)


def parse_link(query: Mapping[str, str], engine) -> LinkedView:
    """The view a link's query string asks for, each part checked (engine: sizes and ranges)."""
    problems, source, params, box = [], None, None, None
    if "id" in query or "split" in query:
        split = query.get("split", "query")
        try:
            engine.picture(split, _integer(query.get("id")))
            source = (split, int(query["id"]))
        except (ValueError, KeyError) as error:
            problems.append(f"the link's query was not used: {error}")
    if any(key in query for key in ("theta", "L", "K")):
        defaults = engine.defaults
        try:
            params = engine.check_params(
                query.get("theta", defaults["theta"]),
                _integer(query.get("L", defaults["L"])),
                _integer(query.get("K", defaults["K"])),
            )
        except ValueError as error:
            problems.append(f"the link's parameters were not used: {error}")
    if "box" in query:
        try:
            box = _box(query["box"], engine.image_size)
        except ValueError as error:
            problems.append(f"the link's box was not used: {error}")
    return LinkedView(source, params, box, tuple(problems))


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
