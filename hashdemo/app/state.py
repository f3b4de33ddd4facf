"""What the search tab remembers between events of one browser session (kept in a gr.State)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hashdemo.service.answers import Query
from hashdemo.service.relevance import DEFAULT_RELEVANCE


@dataclass(frozen=True)
class SearchState:
    query: Query
    path: str  # the query's file, put back in the query box after a refused upload
    params: tuple[float, int, int]  # theta, L, K the panels show: a refused value goes back to them
    reranked_ids: tuple[int, ...] = ()  # the shown re-ranked row, for "why this result"
    coarse_ids: tuple[int, ...] = ()  # the shown global-code row, likewise
    corner: tuple[int, int] | None = None  # the first click of a box (x, y), image pixels
    box: tuple[int, int, int, int] | None = None  # the user's box (top, left, bottom, right)
    source: tuple[str, int] | None = None  # (split, id) when the query is a dataset image: its link
    relevance: str = DEFAULT_RELEVANCE  # the rule the rows are judged by (service.relevance.RELEVANCE)

    def with_click(self, corner: tuple[int, int]) -> SearchState:
        """Two clicks mark a box by its opposite corners; a third starts a new one."""
        if self.corner is None:
            return replace(self, corner=corner, box=None)
        return replace(self, corner=None, box=corner_box(self.corner, corner))

    def without_box(self) -> SearchState:
        return replace(self, corner=None, box=None)


def corner_box(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right) spanned by two clicked corners (x, y)."""
    (x0, y0), (x1, y1) = first, second
    return min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)
