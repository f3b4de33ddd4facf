"""Operating the app for weeks, in short: a soak with a tight disk cap, and load shedding under 64
concurrent clients, each against `python app.py` in its own process."""

import pytest
from gradio_client import Client, handle_file

from hashdemo.app.presenter import SEARCH_OUTPUTS
from hashdemo.app.widgets import example_files, user_errors
from hashdemo.cli.bench import run_load
from hashdemo.cli.soak import run_soak
from hashdemo.harness.served_app import ServedApp

pytestmark = [pytest.mark.slow, pytest.mark.soak]

STATED_WAIT_S = 60  # README, "Operating it": no caller waits longer for an answer or a refusal


def test_a_short_soak_stays_within_the_disk_cap_with_flat_memory_and_equal_answers(tmp_path):
    # a cap this small is reached within the run; the grace still outlasts every response's downloads.
    # 30 uploads pass the cap early (40 pruned ~370 files in ~45 s; 80 took ~60 s and pruned ~2000)
    cap_mb = 12
    result = run_soak(queries=30, cap_mb=cap_mb, grace_s=8, clients=2, sample=6, work=tmp_path)
    assert result["errors"] == []
    assert result["pruned_files"] > 0, "the cap was never reached: the test would prove nothing"
    assert result["budgeted_max_mb"] <= cap_mb
    assert result["rss_growth_after_warmup_mb"] < 100
    assert result["sample_equal_to_fresh_server"] == "6 of 6"
    assert "Traceback" not in (tmp_path / "server.log").read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with ServedApp(log=log) as app:
        yield app, log


def examples() -> list[str]:
    """The example images the app writes at start (so after the server fixture)."""
    files = example_files()
    assert files, "the served app wrote no example images"
    return files


def test_64_concurrent_clients_are_answered_or_told_the_server_is_busy(server):
    app, log = server
    result = run_load(app.url, examples(), callers=64, calls_each=1, download_files=False)
    assert result["calls"] == 64
    assert result["errors"] == [] and result["different"] == 0
    assert result["ok"] + result["busy"] == 64 and result["ok"] > 0
    assert result["longest_s"] <= STATED_WAIT_S
    # the server is alive and answers normally afterwards
    out = Client(app.url, verbose=False).predict(handle_file(examples()[0]), 0.4, 16, 200, api_name="/search")
    assert len(dict(zip(SEARCH_OUTPUTS, out, strict=True))["reranked"]) == 10
    assert "Traceback" not in log.read_text()


def test_a_users_mistake_logs_one_line_naming_the_endpoint_and_no_traceback(server, tmp_path):
    app, log = server
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    client = Client(app.url, verbose=False)
    before = log.read_text()
    mistakes = [
        ((handle_file(str(text)), 0.4, 16, 200), "/search"),
        ((handle_file(str(text)), handle_file(examples()[0]), "union"), "/compose"),
        ((handle_file(examples()[0]), None, "union"), "/compose"),
        ((handle_file(examples()[0]), 0.4, 2.5, 200), "/search"),
    ]
    for args, endpoint in mistakes:
        with pytest.raises(Exception):  # noqa: B017 - the sentence itself is tested in test_app_api
            client.predict(*args, api_name=endpoint)
    new = log.read_text()[len(before) :]
    refusals = [line for line in new.splitlines() if line.startswith("refused input at ")]
    assert len(refusals) == len(mistakes)
    assert [line.split(":")[0] for line in refusals] == [
        "refused input at search",
        "refused input at compose",
        "refused input at compose",
        "refused input at search",
    ]
    assert "Traceback" not in new


def test_a_real_server_error_keeps_its_traceback():
    def broken():
        raise ZeroDivisionError("a bug, not a user's mistake")

    with pytest.raises(ZeroDivisionError):  # not turned into a one-line gr.Error
        user_errors(broken)()
