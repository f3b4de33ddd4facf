"""Links that restore the search view: every part of the query string is checked at the boundary."""

import numpy as np
import pytest

from hashdemo.app.links import parse_link, sentence, view_link
from hashdemo.app.state import SearchState
from hashdemo.checks import number_in_range

K_MAX = 2000  # the K slider's top on the page


class FakeEngine:
    """The engine's boundary checks on a 20-image query split, a 50-image gallery and 64 px images."""

    image_size = 64
    defaults = {"theta": 0.4, "L": 32, "K": 1000}

    def picture(self, split, index):
        sizes = {"query": 20, "gallery": 50}
        if split not in sizes:
            raise ValueError(f"Pick an image from the query split or the gallery (got {split!r}).")
        number_in_range(f"A {split} id", index, 0, sizes[split] - 1, integer=True)
        return np.zeros((64, 64, 3), np.uint8), np.zeros(10, np.uint8)

    def check_params(self, theta, top_l, n_coarse):
        return (
            number_in_range("theta", theta, 0.0, 1.0),
            number_in_range("L (selected local bits)", top_l, 1, 256, integer=True),
            number_in_range("K (coarse candidates)", n_coarse, 1, 10_000, integer=True),
        )


def test_a_view_round_trips_through_its_link():
    state = SearchState(None, "q.png", (0.5, 16, 300), box=(10, 12, 40, 44), source=("gallery", 7))
    link = view_link(state)
    assert link == "?split=gallery&id=7&theta=0.5&L=16&K=300&box=10%2C12%2C40%2C44"
    from urllib.parse import parse_qsl

    view = parse_link(dict(parse_qsl(link[1:])), FakeEngine(), K_MAX)
    assert view == type(view)(("gallery", 7), (0.5, 16, 300), (10, 12, 40, 44), ())


def test_an_uploaded_query_links_its_parameters_only():
    assert view_link(SearchState(None, "upload.png", (0.4, 32, 1000))) == "?theta=0.4&L=32&K=1000"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (
            {"split": "train", "id": "3"},
            "query was not used: Pick an image from the query split or the gallery",
        ),
        ({"id": "abc"}, "query was not used: A query id must be an integer between 0 and 19"),
        ({"split": "gallery", "id": "50"}, "A gallery id must be an integer between 0 and 49"),
        (
            {"L": "0"},
            "the link's L was not used: L (selected local bits) must be an integer between 1 and 256",
        ),
        ({"theta": "lots"}, "the link's theta was not used: theta must be a number between 0 and 1"),
        ({"K": "5000"}, "K (coarse candidates) must be an integer between 1 and 2000 (got '5000')"),
        (
            {"K": "abc"},
            "K (coarse candidates) must be an integer between 1 and 2000 (got 'abc')",
        ),  # the page's top
        ({"box": "1,2,3"}, "box was not used: a box is four whole numbers"),
        ({"box": "10,10,5,40"}, "box was not used: a box lies inside the 64x64 image"),
        ({"box": "0,0,64,10"}, "box was not used: a box lies inside the 64x64 image"),
    ],
)
def test_a_bad_part_is_dropped_with_a_sentence(query, problem):
    view = parse_link(query, FakeEngine(), K_MAX)
    assert len(view.problems) == 1 and problem in view.problems[0]


def test_the_rest_of_a_link_applies_when_one_part_is_bad():
    view = parse_link(
        {"split": "gallery", "id": "5", "theta": "0.5", "L": "0", "box": "1,1,9,9"}, FakeEngine(), K_MAX
    )
    assert view.source == ("gallery", 5) and view.box == (1, 1, 9, 9)
    assert view.params == (0.5, 32, 1000)  # theta applies, L keeps its default
    assert len(view.problems) == 1


def test_every_bad_parameter_is_named_and_each_problem_is_one_sentence():
    """Issue 30: theta=abc&L=9999 named only theta; warnings ended in ".."."""
    view = parse_link({"theta": "abc", "L": "9999", "K": "20"}, FakeEngine(), K_MAX)
    assert [p.split(" was not used")[0] for p in view.problems] == ["the link's theta", "the link's L"]
    assert view.params == (0.4, 32, 20)
    assert all(sentence(p).count("..") == 0 and sentence(p).endswith(".") for p in view.problems)
    assert sentence("the link's box was not used: no.") == "The link's box was not used: no."


def _query(link: str) -> dict:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(link.lstrip("?")))


def test_a_composition_round_trips_through_its_link():
    from hashdemo.app.links import composition_link, linked_tab, parse_composition

    link = composition_link((("query", 2), ("gallery", 40), ("query", 7)), ("union", "difference"))
    assert link == "?tab=compose&a=query%3A2&b=gallery%3A40&c=query%3A7&op=union&then=difference"
    linked = parse_composition(_query(link), FakeEngine())
    assert linked.sources == (("query", 2), ("gallery", 40), ("query", 7))
    assert linked.operators == ("union", "difference") and linked.problems == ()
    assert linked_tab(_query(link)) == ("compose", None)
    pair = parse_composition(_query("?a=query:1&b=query:3&op=intersection"), FakeEngine())
    assert pair.sources == (("query", 1), ("query", 3)) and pair.operators == ("intersection",)
    assert linked_tab(_query("?a=query:1&b=query:3&op=union")) == ("compose", None)  # no tab= needed
    assert composition_link((("query", 1), None), ("union",)) == ""  # an uploaded image has no link


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ("?a=query:20&b=query:1&op=union", "A query id must be an integer between 0 and 19"),
        ("?a=query:1&op=union", "slot B is missing"),
        ("?a=query:1&b=shelf:2&op=union", "Pick an image from the query split or the gallery"),
        ("?a=query:1&b=query:2&op=xor", "an operator is one of union, intersection, difference"),
        ("?a=query:1&b=query:2&c=query:3&op=union", "an operator is one of"),  # a chain needs `then`
        ("?a=query:x&b=query:2&op=union", "A query id must be an integer"),
    ],
)
def test_a_bad_composition_link_is_dropped_with_a_sentence(link, problem):
    from hashdemo.app.links import parse_composition

    linked = parse_composition(_query(link), FakeEngine())
    assert linked.sources == () and len(linked.problems) == 1
    assert linked.problems[0].startswith("the link's composition was not used: ")
    assert problem in linked.problems[0]


def test_a_bad_tab_name_is_dropped_with_a_sentence():
    from hashdemo.app.links import linked_tab

    assert linked_tab({"tab": "benchmarks"}) == ("benchmarks", None)
    assert linked_tab({}) == (None, None)
    tab, problem = linked_tab({"tab": "../etc"})
    assert tab is None and "a tab is one of search, compose, benchmarks, how" in problem


def test_a_relevance_rule_rides_in_the_link_and_a_bad_one_is_named():
    """Issue 37, item 1: the rule is part of the view (the default one leaves the link as it was)."""
    from urllib.parse import parse_qsl

    state = SearchState(None, "q.png", (0.4, 32, 1000), source=("query", 3), relevance="attended")
    link = view_link(state)
    assert link == "?split=query&id=3&theta=0.4&L=32&K=1000&rel=attended"
    assert parse_link(dict(parse_qsl(link[1:])), FakeEngine(), K_MAX).relevance == "attended"
    bad = parse_link({"split": "query", "id": "3", "rel": "similar"}, FakeEngine(), K_MAX)
    assert bad.relevance is None and bad.source == ("query", 3)
    assert bad.problems == (
        "the link's rel was not used: relevance is one of label, exact, attended, boxed (got 'similar')",
    )
