"""The app's named endpoints through gradio_client, against the real app on a free loopback port."""

import pytest
from gradio_client import Client, handle_file

from hashdemo.data import CLASS_NAMES


@pytest.fixture(scope="module")
def api(served):
    app, url = served
    return app, Client(url, verbose=False)


def _examples(app) -> list[str]:
    return sorted(str(p) for p in app.EXAMPLES_DIR.glob("query-*.png"))


def test_search_returns_panels_and_both_result_rows(api):
    app, client = api
    out = client.predict(handle_file(_examples(app)[0]), 0.4, 16, 200, api_name="/search")
    cam, region, maps, _scores, strip, info, coarse_header, coarse, rerank_header, reranked = out
    assert all(isinstance(path, str) for path in (cam, region, strip))
    assert len(maps) == 12
    assert "labels:" in info and "Selected 16 of 64" in info
    assert len(coarse) == 10 and len(reranked) == 10
    assert "P@10 =" in coarse_header and "P@10 =" in rerank_header
    assert all(any(name in tile["caption"] for name in CLASS_NAMES) for tile in reranked)


def test_changing_l_changes_the_reranked_row(api):
    app, client = api
    image = handle_file(_examples(app)[1])
    few = client.predict(image, 0.4, 2, 500, api_name="/search")[9]
    many = client.predict(image, 0.4, 48, 500, api_name="/search")[9]
    assert [t["caption"] for t in few] != [t["caption"] for t in many]


@pytest.mark.parametrize("operator", ["union", "intersection", "difference"])
def test_compose_each_operator(api, operator):
    app, client = api
    a, b = _examples(app)[2], _examples(app)[3]
    summary, composed, bitwise = client.predict(handle_file(a), handle_file(b), operator, api_name="/compose")
    assert "Target set" in summary and "Predicted from the composed code" in summary
    assert len(composed) == 20 and len(bitwise) == 20
    assert all(any(name in tile["caption"] for name in CLASS_NAMES) for tile in composed)


@pytest.mark.parametrize(
    "args, message",
    [  # the sliders' own bounds answer first, with the bound in the sentence
        ((0.4, 0, 100), "less than minimum value 1"),
        ((0.4, 65, 100), "greater than maximum value 64"),
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


def test_not_an_image_gets_a_sentence_and_the_server_keeps_serving(api, tmp_path):
    app, client = api
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(text)), handle_file(_examples(app)[0]), "union", api_name="/compose")
    assert len(client.predict(handle_file(_examples(app)[0]), 0.4, 16, 200, api_name="/search")[9]) == 10


def test_unknown_operator_and_missing_slot_are_refused(api):
    app, client = api
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(
            handle_file(_examples(app)[0]), handle_file(_examples(app)[1]), "xor", api_name="/compose"
        )
    with pytest.raises(Exception, match="slot B"):
        client.predict(handle_file(_examples(app)[0]), None, "union", api_name="/compose")
