"""The search bench's quick mode, in-process on a tiny gallery."""

import json
from pathlib import Path

import pytest

from hashdemo.cli.bench import main


def test_search_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench" / "search.json"
    main(["search", "--quick", "--sizes", "300", "--k", "10", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| N | bits | queries |" in printed
    result = json.loads(out.read_text())
    assert result["bench"] == "search" and result["seed"] == 0
    rows = result["rows"]
    assert {(r["n"], r["nbits"], r["queries"]) for r in rows} == {
        (300, nbits, q) for nbits in (32, 64, 128) for q in (1, 100)
    }
    for row in rows:
        assert row["k"] == 10
        for key in ("numpy_ms", "default_ms", "faiss_ms", "numpy_over_faiss", "default_over_faiss"):
            assert row[key] > 0
        for pair in ("numpy_vs_faiss", "default_vs_faiss"):
            assert row[pair] == {"distances_equal": True, "ids_equal": True}


def test_bench_needs_a_subcommand() -> None:
    with pytest.raises(SystemExit):
        main([])
