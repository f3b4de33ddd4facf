"""`python -m hashdemo query`: results as JSON, and one line with exit status 2 for bad input."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from hashdemo.cli import query
from hashdemo.cli.query import main
from hashdemo.data.outfits import load_outfits


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    query = load_outfits()["query"]
    folder = tmp_path_factory.mktemp("query-images")
    paths = []
    for i in range(2):
        Image.fromarray(query.images[i]).save(folder / f"q{i}.png")
        paths.append(str(folder / f"q{i}.png"))
    (folder / "notes.png").write_text("not an image")
    return paths, str(folder / "notes.png")


@pytest.mark.slow  # loads and searches with the shipped models
def test_search_and_compose_print_json(examples, capsys):
    (a, b), _ = examples
    assert main(["search", a, "--L", "8", "--K", "50", "--top", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["selected_bits"]) == 8 and len(out["reranked"]) == 5
    assert {r["gallery_id"] for r in out["reranked"]} <= set(range(10000))
    assert out["relevance"] == "label: shares a label" and "shares_a_label" in out["reranked"][0]
    assert main(["search", a, "--L", "8", "--K", "50", "--top", "5", "--relevance", "exact"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert [r["gallery_id"] for r in exact["reranked"]] == [r["gallery_id"] for r in out["reranked"]]
    assert [r["exact_label_set"] for r in exact["reranked"]] == [
        r["labels"] == exact["query_labels"] for r in exact["reranked"]
    ]
    assert main(["compose", a, b, "union", "--top", "7"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 7 and len(out["bitwise"]) == 7
    assert np.all(np.diff([r["distance"] for r in out["results"]]) >= 0)
    assert main(["compose", a, b, "union", "--then", "difference", "--image-c", a, "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["operator"] == ["union", "difference"] and len(out["results"]) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda a, bad: ["search", bad], "not an image"),
        (lambda a, bad: ["search", a + ".missing"], "could not be found"),
        (
            lambda a, bad: ["search", a, "--L", "0"],
            "L (selected local bits) must be an integer between 1 and",
        ),
        (lambda a, bad: ["search", a, "--theta", "1.5"], "theta must be a number between 0 and 1"),
        (
            lambda a, bad: ["search", a, "--K", "10001"],
            "K (coarse candidates) must be an integer between 1 and 10000",
        ),
        (lambda a, bad: ["compose", a, bad, "difference"], "not an image"),
        (lambda a, bad: ["compose", a, a, "union", "--then", "union"], "a chain needs both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(examples, engine, monkeypatch, capsys, argv, message):
    (a, _), bad = examples
    # the session's engine, what `Engine.load()` returns (~0.4 s a case; the test above loads it for real)
    monkeypatch.setattr(query, "Engine", SimpleNamespace(load=lambda: engine))
    assert main(argv(a, bad)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
