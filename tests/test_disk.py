"""The disk budget: size and age limits, oldest first, and never a file named within the grace period."""

import os

import pytest

from hashdemo.storage.disk import LOW_WATER, DiskBudget, budget_from_env

NOW = 1_000_000.0


def _file(path, size, age_s):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_over_the_cap_the_oldest_go_first_down_to_the_low_water_mark(tmp_path):
    files = [_file(tmp_path / "out" / f"{i}.png", 100, age_s=1000 + 10 * i) for i in range(10)]
    budget = DiskBudget([tmp_path / "out"], max_bytes=500, grace_s=300)
    done = budget.prune(now=NOW)
    assert done["bytes_before"] == 1000 and done["removed"] == 7  # 300 bytes left <= 0.7 * 500
    assert sum(budget.usage().values()) <= LOW_WATER * 500
    assert [f.exists() for f in files] == [True] * 3 + [False] * 7  # the youngest three stay


def test_recently_named_files_and_kept_patterns_survive_even_over_the_cap(tmp_path):
    fresh = [_file(tmp_path / "out" / f"new{i}.png", 100, age_s=10) for i in range(5)]
    figure = _file(tmp_path / "out" / "figure-abc.png", 100, age_s=10**6)
    old = _file(tmp_path / "out" / "old.png", 100, age_s=1000)
    DiskBudget([tmp_path / "out"], max_bytes=200, grace_s=300).prune(now=NOW)
    assert all(f.exists() for f in fresh) and figure.exists() and not old.exists()


def test_under_the_cap_only_files_past_the_age_limit_go(tmp_path):
    young = _file(tmp_path / "out" / "young.png", 10, age_s=3600)
    stale = _file(tmp_path / "out" / "stale.png", 10, age_s=2 * 86400)
    DiskBudget([tmp_path / "out"], max_bytes=10**9).prune(now=NOW)
    assert young.exists() and not stale.exists()


def test_gradios_copy_counts_as_named_when_the_apps_picture_is(tmp_path):
    outputs, uploads = tmp_path / "outputs", tmp_path / "gradio"
    _file(outputs / "abc.png", 100, age_s=5)  # just named again by a response
    copy = _file(uploads / "h1" / "abc.png", 100, age_s=5000)  # Gradio copied it long ago
    upload = _file(uploads / "h2" / "photo.png", 100, age_s=5000)
    DiskBudget([outputs, uploads], max_bytes=150, named_by=outputs).prune(now=NOW)
    assert copy.exists() and not upload.exists()
    assert not (uploads / "h2").exists()  # Gradio's per-file folder goes with its file


@pytest.mark.parametrize("name", ["HASHDEMO_CACHE_MAX_MB", "HASHDEMO_CACHE_GRACE_S"])
@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_setting_is_refused_with_a_sentence(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} must be a positive number"):
        budget_from_env([tmp_path], tmp_path)


def test_the_settings_reach_the_budget(monkeypatch, tmp_path):
    monkeypatch.setenv("HASHDEMO_CACHE_MAX_MB", "2.5")
    monkeypatch.setenv("HASHDEMO_CACHE_GRACE_S", "7")
    budget = budget_from_env([tmp_path], tmp_path)
    assert budget.max_bytes == int(2.5 * 2**20) and budget.grace_s == 7
