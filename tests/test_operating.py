"""Operating the app for weeks, in short: a soak with a tight disk cap, and load shedding under 64
concurrent clients, each against `python app.py` in its own process."""

import re

from gradio_client import Client, handle_file

from hashdemo.app.ui import SEARCH_OUTPUTS
from hashdemo.cli.bench import run_load
from hashdemo.cli.served_app import ServedApp
from hashdemo.cli.soak import run_soak
from hashdemo.data import default_cache_dir

STATED_WAIT_S = 60  # README, "Operating it": no caller waits longer for an answer or a refusal


def test_a_short_soak_stays_within_the_disk_cap_with_flat_memory_and_equal_answers(tmp_path):
    # a cap this small is reached within the run; the grace still outlasts every response's downloads
    cap_mb = 12
    result = run_soak(queries=80, cap_mb=cap_mb, grace_s=8, clients=2, sample=6, work=tmp_path)
    assert result["errors"] == []
    assert result["pruned_files"] > 0, "the cap was never reached: the test would prove nothing"
    assert result["budgeted_max_mb"] <= cap_mb
    assert result["rss_growth_after_warmup_mb"] < 100
    assert result["sample_equal_to_fresh_server"] == "6 of 6"
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log


def test_64_concurrent_clients_are_answered_or_told_the_server_is_busy(tmp_path):
    examples = sorted(str(p) for p in (default_cache_dir() / "examples").glob("query-*.png"))
    with ServedApp(log=tmp_path / "server.log") as app:
        result = run_load(app.url, examples, callers=64, calls_each=1, download_files=False)
        # the server is alive and answers normally afterwards
        out = Client(app.url, verbose=False).predict(
            handle_file(examples[0]), 0.4, 16, 200, api_name="/search"
        )
        assert len(dict(zip(SEARCH_OUTPUTS, out, strict=True))["reranked"]) == 10
    assert result["calls"] == 64
    assert result["errors"] == [] and result["different"] == 0
    assert result["ok"] + result["busy"] == 64 and result["ok"] > 0
    assert result["longest_s"] <= STATED_WAIT_S
    assert not re.search(r"Traceback", (tmp_path / "server.log").read_text())
