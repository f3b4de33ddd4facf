"""The app's named endpoints through gradio_client, against the real app on a free loopback port."""

import json
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from hashdemo.app.presenter import COMPOSE_OUTPUTS, SEARCH_OUTPUTS
from hashdemo.data.fashion_mnist import CLASS_NAMES

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def api(served):
    app, url = served
    return app, Client(url, verbose=False)


def _examples(app) -> list[str]:
    return sorted(str(p) for p in app.EXAMPLES_DIR.glob("query-*.png"))


def search(client, image, theta=0.4, top_l=16, n_coarse=200) -> dict:
    """/search's outputs by name."""
    out = client.predict(handle_file(image), theta, top_l, n_coarse, api_name="/search")
    return dict(zip(SEARCH_OUTPUTS, out, strict=True))


def compose(client, image_a, image_b, operator, *chain) -> dict:
    """/compose's outputs by name; `chain` = (image_c, then) for (A op B) then C."""
    chain = (handle_file(chain[0]), chain[1]) if chain else ()
    out = client.predict(handle_file(image_a), handle_file(image_b), operator, *chain, api_name="/compose")
    return dict(zip(COMPOSE_OUTPUTS, out, strict=True))


def test_search_returns_panels_and_both_result_rows(api):
    app, client = api
    out = search(client, _examples(app)[0])
    assert all(isinstance(out[name], str) for name in ("cam", "region", "strip", "scores"))
    assert len(out["maps"]) == 12
    channels = app.engine.hier_codes.local_bits.shape[1]
    assert "labels:" in out["info"] and f"Selected 16 of {channels}" in out["info"]
    assert len(out["coarse"]) == 10 and len(out["reranked"]) == 10
    assert "P@10 =" in out["coarse_header"] and "P@10 =" in out["rerank_header"]
    # the re-rank's ties counted over all K candidates, not over the ten tiles shown
    ties = out["rerank_ties"]
    assert ties.startswith("d_L over the K = 200 candidates")
    histogram = re.search(r"\(value: count\): (.*?)\. The tiles", ties).group(1)
    counts = {int(v): int(c) for v, c in re.findall(r"(\d+): (\d+)", histogram)}
    shown = [int(re.search(r"d_L=(\d+)", tile["caption"]).group(1)) for tile in out["reranked"]]
    assert all(counts[d] >= shown.count(d) for d in shown)
    if "more values" not in histogram:
        assert sum(counts.values()) == 200
    tied = int(re.search(r"reach d_L = \d+, which (\d+) candidates", ties).group(1))
    assert tied == counts[shown[-1]] >= shown.count(shown[-1])
    assert all(any(name in tile["caption"] for name in CLASS_NAMES) for tile in out["reranked"])


def test_changing_l_changes_the_reranked_row(api):
    app, client = api
    few = search(client, _examples(app)[1], top_l=2, n_coarse=500)["reranked"]
    many = search(client, _examples(app)[1], top_l=48, n_coarse=500)["reranked"]
    assert [t["caption"] for t in few] != [t["caption"] for t in many]


@pytest.mark.parametrize("operator", ["union", "intersection", "difference"])
def test_compose_each_operator(api, operator):
    app, client = api
    a, b = _examples(app)[2], _examples(app)[3]
    out = compose(client, a, b, operator)
    assert "Target set" in out["summary"] and "Predicted from the composed code" in out["summary"]
    assert len(out["composed"]) == 20 and len(out["bitwise"]) == 20
    assert all(any(name in tile["caption"] for name in CLASS_NAMES) for tile in out["composed"])


def test_a_chain_composes_three_images(api):
    app, client = api
    a, b, c = _examples(app)[2], _examples(app)[3], _examples(app)[4]
    out = compose(client, a, b, "union", c, "intersection")
    assert "Target set T = (A union B) intersection C" in out["summary"] and "**C:**" in out["summary"]
    assert len(out["composed"]) == 20 and len(out["bitwise"]) == 20
    with pytest.raises(Exception, match="slot C"):
        client.predict(handle_file(a), handle_file(b), "union", None, "difference", api_name="/compose")


@pytest.mark.parametrize(
    "args, message",
    [  # the sliders' own bounds answer first, with the bound in the sentence
        ((0.4, 0, 100), "less than minimum value 1"),
        ((1.5, 16, 100), "greater than maximum value 1"),
        ((-0.1, 16, 100), "less than minimum value 0"),
        ((0.4, 16, 0), "less than minimum value 1"),
        ((0.4, 16, 2001), "greater than maximum value 2000"),
    ],
)
def test_search_refuses_out_of_range_parameters(api, args, message):
    app, client = api
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(_examples(app)[0]), *args, api_name="/search")


def test_a_value_the_slider_allows_but_the_rule_refuses_gets_the_rules_sentence(api):
    app, client = api
    channels = app.engine.hier_codes.local_bits.shape[1]
    with pytest.raises(
        Exception, match=f"L \\(selected local bits\\) must be an integer between 1 and {channels}"
    ):
        client.predict(handle_file(_examples(app)[0]), 0.4, 2.5, 100, api_name="/search")


def test_not_an_image_gets_a_sentence_and_the_server_keeps_serving(api, tmp_path):
    app, client = api
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(text)), handle_file(_examples(app)[0]), "union", api_name="/compose")
    assert len(search(client, _examples(app)[0])["reranked"]) == 10


def test_unknown_operator_and_missing_slot_are_refused(api):
    app, client = api
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(
            handle_file(_examples(app)[0]), handle_file(_examples(app)[1]), "xor", api_name="/compose"
        )
    with pytest.raises(Exception, match="slot B"):
        client.predict(handle_file(_examples(app)[0]), None, "union", api_name="/compose")


def test_a_search_answers_with_its_link_its_files_and_nothing_left_from_before(api):
    """Issue 30: one answer holds the link, the named downloads, the per-query figures and the cleared
    explanations (a dataset image sent as a file keeps its link)."""
    app, client = api
    out = search(client, str(app.EXAMPLES_DIR / "query-0.png"))
    assert out["address"] == "?split=query&id=0&theta=0.4&L=16&K=200" and out["link_note"] == ""
    assert Path(out["export_json"]).name == "hashdemo-search-query-0-K200-top100.json"
    document = json.loads(Path(out["export_json"]).read_text())
    assert document["link"] == out["address"] and document["L"] == 16 and len(document["query_H_l"]) == 256
    assert Path(out["export_csv"]).name == "hashdemo-search-query-0-K200-top100.csv"
    assert "AP@100 = " in out["rerank_header"] and "AP@200 = " in out["coarse_header"]
    assert out["why_image"] is None and out["bit_view"] is None and out["pin_image"] is None
    assert out["side_image"] is None and out["side_table"] == ""  # computed only while open on the page


def test_a_composition_answers_with_its_figures_link_and_files(api):
    app, client = api
    a, b = (str(app.EXAMPLES_DIR / f"query-{i}.png") for i in (2, 5))
    out = compose(client, a, b, "union")
    assert out["address"] == "?tab=compose&a=query%3A2&b=query%3A5&op=union"
    assert Path(out["export_json"]).name == "hashdemo-compose-query-2-union-query-5.json"
    assert "AP@100 = " in out["summary"] and len(out["composed"]) == 20
    document = json.loads(Path(out["export_json"]).read_text())
    assert set(document["slot_codes"]) == {"A", "B"} and len(document["composed_code"]) == 96


def test_the_python_snippet_of_docs_api_runs_against_the_served_app(served, tmp_path, monkeypatch):
    """docs/api.md's first Python block, run as written (its address pointed at this app, its image
    files three of the app's examples): the documented way to call the app must work."""
    app, url = served
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in snippet
    examples = _examples(app)
    for name, example in zip(("query.png", "a.png", "b.png", "c.png"), examples, strict=False):
        (tmp_path / name).write_bytes(Path(example).read_bytes())
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet.replace("http://127.0.0.1:7860/", url), "docs/api.md", "exec"), scope)
    assert set(scope["out"]) == set(COMPOSE_OUTPUTS)  # the last answer the snippet names is /compose's


def test_search_json_is_the_same_search_as_data_without_pictures(api):
    """`/search_json` (issue 37, defect 17): the ranking /search shows, every one of the K results with
    its distances, the codes and the figures, recomputable from the rows; bad input is one sentence."""
    app, client = api
    image = _examples(app)[0]
    document = client.predict(handle_file(image), 0.4, 16, 200, api_name="/search_json")
    assert (document["theta"], document["L"], document["K"]) == (0.4, 16, 200)
    assert len(document["reranked"]) == 200 and len(document["global_only"]) == 200
    assert len(document["selected_bits"]) == 16 and set(document["global_code"]) <= {"0", "1"}
    engine = app.engine
    answer = engine.search(engine.read_image(image), 0.4, 16, 200)
    assert [row["gallery_id"] for row in document["reranked"]] == answer.reranked.ids.tolist()
    assert [row["distance"] for row in document["reranked"]] == answer.reranked.distances.tolist()
    shown = search(client, image)["reranked"]
    pairs = zip(document["reranked"][:10], shown, strict=True)  # the page shows the first ten
    assert all(tile["caption"].startswith(f"#{row['gallery_id']} ") for row, tile in pairs)
    relevant = [row["shares_a_label"] for row in document["reranked"][:10]]
    assert document["figures"]["reranked"]["p_at_shown"] == pytest.approx(sum(relevant) / 10)
    refused = (
        "greater than maximum value 2000|K \\(coarse candidates\\) must be an integer between 1 and 2000"
    )
    with pytest.raises(Exception, match=refused):  # the slider's own check, or the page's
        client.predict(handle_file(image), 0.4, 16, 5000, api_name="/search_json")


def test_a_relevance_rule_rescores_the_same_rows_from_the_tiles_labels(api):
    """Issue 37, item 1: /search takes the rule after K (the four-value call keeps "shares a label"): the
    rows stay, the headers' P@10 follow the rule, computed here from the tiles' own labels."""
    app, client = api
    image = str(app.EXAMPLES_DIR / "query-0.png")
    engine = app.engine
    query_labels = set(engine.label_text(engine.known.labels(engine.read_image(image))).split(", "))
    answers = {
        rule: dict(
            zip(
                SEARCH_OUTPUTS,
                client.predict(handle_file(image), 0.4, 16, 200, rule, api_name="/search"),
                strict=True,
            )
        )
        for rule in ("label", "exact", "attended")
    }
    tiles = [tile["caption"].split(" · ")[1] for tile in answers["label"]["reranked"]]
    for out in answers.values():
        assert [t["caption"].split(" · ")[1] for t in out["reranked"]] == tiles
    tile_sets = [set(text.split(", ")) for text in tiles]
    expected = {
        "label": sum(bool(s & query_labels) for s in tile_sets) / 10,
        "exact": sum(s == query_labels for s in tile_sets) / 10,
    }
    for rule, words in (("label", "shares a label"), ("exact", "exact label set")):
        header = answers[rule]["rerank_header"]
        assert f"P@10 = {expected[rule]:.1f}" in header and f"relevant = {words}" in header
    assert answers["exact"]["address"].endswith("&rel=exact") and "rel=" not in answers["label"]["address"]
    assert "relevant = holds the attended item" in answers["attended"]["rerank_header"]
    document = client.predict(handle_file(image), 0.4, 16, 200, "exact", api_name="/search_json")
    assert document["relevance"] == "exact: exact label set"
    assert [row["exact_label_set"] for row in document["reranked"][:10]] == [
        s == query_labels for s in tile_sets
    ]
    with pytest.raises(Exception, match="similar"):  # the radio's own check names the value refused
        client.predict(handle_file(image), 0.4, 16, 200, "similar", api_name="/search")
