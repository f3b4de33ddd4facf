"""Your own images (issue 20): a folder of real PNG and JPEG files of another kind than the outfits
(coloured shapes on textured backgrounds, 1-3 a picture), written here, imported, described; each
user mistake gets its sentence and leaves nothing behind."""

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from hashdemo.cli.data import main as data_main
from hashdemo.data.images import load_image
from hashdemo.data.imported import MIN_IMAGES, DatasetError, describe_dataset, import_dataset, load_dataset
from hashdemo.evaluation.tuning import THETAS, TOP_LS

SHAPES = ("circle", "square", "triangle", "cross", "ring")


def draw(rng: np.random.Generator, shapes: list[str], side: int) -> np.ndarray:
    """A textured background with the given shapes, each in its own colour and place."""
    noise = rng.integers(0, 60, (side // 8 + 1, side // 8 + 1, 3), dtype=np.uint8)
    image = cv2.resize(noise, (side, side), interpolation=cv2.INTER_CUBIC)
    for k, shape in enumerate(shapes):
        colour = tuple(int(c) for c in rng.integers(120, 256, 3))
        cx, cy = int((k + 0.5) * side / len(shapes)), int(rng.integers(side // 3, 2 * side // 3))
        r = max(4, side // (2 * len(shapes) + 2))
        if shape == "circle":
            cv2.circle(image, (cx, cy), r, colour, -1)
        elif shape == "ring":
            cv2.circle(image, (cx, cy), r, colour, max(2, r // 3))
        elif shape == "square":
            cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
        elif shape == "triangle":
            points = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
            cv2.fillPoly(image, [points], colour)
        else:
            cv2.line(image, (cx - r, cy - r), (cx + r, cy + r), colour, max(2, r // 3))
            cv2.line(image, (cx - r, cy + r), (cx + r, cy - r), colour, max(2, r // 3))
    return image


def write_folder(root, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n image files (PNG, JPEG; RGB, grey, RGBA; 40-120 px, not all square) and their (path, labels)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        shapes = list(rng.choice(SHAPES, int(rng.integers(1, 4)), replace=False))
        picture = Image.fromarray(draw(rng, shapes, int(rng.integers(40, 121))))
        if i % 7 == 3:
            picture = picture.resize((picture.width, picture.height * 2 // 3))  # not square
        mode = ("RGB", "L", "RGBA")[i % 3]
        name = f"img/{i:04d}.{'jpg' if i % 2 else 'png'}"
        picture = (
            picture.convert("L" if mode == "L" else "RGB") if name.endswith("jpg") else picture.convert(mode)
        )
        picture.save(root / name)
        rows.append((name, "|".join(shapes)))
    return rows


def write_csv(path, rows, header=("path", "labels")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return root, write_folder(root, 300)


def test_a_folder_imports_into_splits_with_every_query_set_in_the_gallery(shapes, tmp_path):
    root, rows = shapes
    meta = import_dataset("shapes", write_csv(root / "labels.csv", rows), cache_dir=tmp_path)
    dataset = load_dataset("shapes", cache_dir=tmp_path)
    assert dataset.classes == tuple(sorted(SHAPES)) and meta["bad_rows"] == []
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    assert (
        sum(sizes.values()) == 300 and sizes["query"] == 30 and sizes["val"] == 30 and sizes["gallery"] == 90
    )
    gallery_sets = {row.tobytes() for row in dataset.splits["gallery"].labels}
    assert all(row.tobytes() in gallery_sets for row in dataset.splits["query"].labels)
    for split in dataset.splits.values():
        assert split.images.shape[1:] == (64, 64, 3) and split.images.dtype == np.uint8
        assert (split.labels.sum(axis=1) >= 1).all()
    described = describe_dataset(dataset)
    assert described["sizes"] == sizes and set(described["images_per_class"]["train"]) == set(SHAPES)
    # each stored image is the file as an upload would see it, with its own labels
    files = json.loads((tmp_path / "datasets/shapes/dataset.json").read_text())["files"]
    line = int(np.load(tmp_path / "datasets/shapes" / files["labels"])["gallery_rows"][0])
    path, labels = rows[line - 2]
    np.testing.assert_array_equal(dataset.splits["gallery"].images[0], load_image(root / path, 64))
    assert [dataset.classes[c] for c in np.flatnonzero(dataset.splits["gallery"].labels[0])] == sorted(
        labels.split("|")
    )


def test_the_same_files_again_are_a_no_op_and_a_changed_csv_reimports(shapes, tmp_path):
    root, rows = shapes
    csv_path = write_csv(tmp_path / "labels.csv", [(f"{root}/{p}", lab) for p, lab in rows])
    import_dataset("again", csv_path, root=root.parent, cache_dir=tmp_path)
    stored = tmp_path / "datasets/again/dataset.json"
    stamp = stored.stat().st_mtime_ns
    import_dataset("again", csv_path, root=root.parent, cache_dir=tmp_path)
    assert stored.stat().st_mtime_ns == stamp
    write_csv(csv_path, [(f"{root}/{p}", lab) for p, lab in rows[:-10]])
    assert import_dataset("again", csv_path, root=root.parent, cache_dir=tmp_path)["rows"] == 290


def test_a_few_bad_rows_are_skipped_and_listed(shapes, tmp_path):
    root, rows = shapes
    (root / "broken.png").write_bytes(b"not a png at all")
    bad = [
        ("missing.png", "circle"),
        ("broken.png", "square"),
        ("img/0000.png", ""),
        ("../../etc/passwd", "ring"),
    ]
    meta = import_dataset(
        "fewbad", write_csv(tmp_path / "labels.csv", rows[:200] + bad), root=root, cache_dir=tmp_path
    )
    problems = {row["path"]: row["problem"] for row in meta["bad_rows"]}
    assert problems["missing.png"] == "file not found" and problems["img/0000.png"] == "no labels"
    assert (
        problems["broken.png"].startswith("unreadable image")
        and problems["../../etc/passwd"] == "outside the root folder"
    )
    assert sum(meta["splits"].values()) == 200


def test_too_many_bad_rows_refuse_naming_them_and_leave_nothing(shapes, tmp_path):
    root, rows = shapes
    bad = [(f"gone-{i}.png", "circle") for i in range(20)]
    with pytest.raises(
        DatasetError, match=r"20 of 220 rows are bad: line 202 'gone-0.png': file not found.*9%"
    ):
        import_dataset(
            "manybad", write_csv(tmp_path / "labels.csv", rows[:200] + bad), root=root, cache_dir=tmp_path
        )
    assert not (tmp_path / "datasets" / "manybad").exists()


def test_too_few_images_refuse_saying_how_many_are_needed(shapes, tmp_path):
    root, rows = shapes
    with pytest.raises(DatasetError, match=f"50 usable images; an import needs at least {MIN_IMAGES}"):
        import_dataset("small", write_csv(tmp_path / "labels.csv", rows[:50]), root=root, cache_dir=tmp_path)


def test_the_deephash_list_format(shapes, tmp_path):
    root, rows = shapes
    classes = sorted(SHAPES)
    lines = [
        f"{p} " + " ".join("1" if c in lab.split("|") else "0" for c in classes) for p, lab in rows[:240]
    ]
    lines.append(f"{rows[0][0]} 1 0")  # too short: a bad row
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "classes.txt").write_text("\n".join(classes) + "\n")
    meta = import_dataset(
        "listed",
        root=root,
        list_path=tmp_path / "list.txt",
        classes_path=tmp_path / "classes.txt",
        cache_dir=tmp_path,
    )
    assert meta["classes"] == classes and meta["bad_rows"][0]["problem"].startswith("not 5 zeros and ones")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "bad name!", "--csv", "x.csv"], "A dataset name is 1-64 letters"),
        (["import", "ok", "--csv", "nowhere.csv"], "does not exist"),
        (["import", "ok"], "Give either --csv FILE, or --list FILE with --classes FILE"),
        (["describe", "never-imported"], "No dataset 'never-imported' is imported"),
    ],
)
def test_the_command_line_says_one_line_and_exits_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert data_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_csv_without_the_columns_is_refused(shapes, tmp_path):
    root, rows = shapes
    csv_path = write_csv(tmp_path / "labels.csv", rows, header=("file", "tags"))
    with pytest.raises(DatasetError, match="needs a header with the columns path and labels"):
        import_dataset("cols", csv_path, root=root, cache_dir=tmp_path)


def test_export_outfits_then_import_then_describe(tmp_path, monkeypatch, capsys):
    assert (
        data_main(["export-outfits", str(tmp_path / "export"), "--count", "220"]) == 0
    )  # the outfits' cache
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path / "cache"))  # the import goes to its own
    assert data_main(["import", "outfits-files", "--csv", str(tmp_path / "export" / "labels.csv")]) == 0
    assert (tmp_path / "cache" / "datasets" / "outfits-files" / "dataset.json").is_file()
    capsys.readouterr()
    assert data_main(["describe", "outfits-files"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert sum(described["sizes"].values()) == 220 and len(described["classes"]) <= 10


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """A cache holding the shapes folder imported and both app models trained on it for one epoch."""
    from hashdemo.cli.train import main as train_main

    root, rows = shapes
    cache = tmp_path_factory.mktemp("trained-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HASHDEMO_CACHE_DIR", str(cache))
        import_dataset("shapes", write_csv(root / "labels.csv", rows))
        for model in ("hier", "single_level", "single_level_local", "dcoh"):
            args = [
                model,
                "--dataset",
                "shapes",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--operator-steps",
                "20",
            ]
            assert train_main(args) == 0
        assert train_main(["hier", "--dataset", "nothing-here"]) == 2
    return cache


@pytest.mark.slow
def test_train_each_app_model_for_one_epoch_on_an_imported_folder(trained):
    """`train MODEL --dataset NAME`: checkpoints go under the dataset's cache, with its classes."""
    from hashdemo.model.checkpoints import load_checkpoint

    checkpoints = trained / "datasets" / "shapes" / "checkpoints"
    for model in ("hier", "single_level", "single_level_local", "dcoh"):
        checkpoint = load_checkpoint(model, checkpoints)
        assert checkpoint.config.dataset == "shapes" and checkpoint.config.n_classes == len(SHAPES)
        assert (
            checkpoint.metrics["train_images"] == 150 and not (checkpoints / model / "progress.pt").exists()
        )
        probs = checkpoint.model.encode(
            load_dataset("shapes", trained).splits["query"].images[:4]
        ).label_probs
        assert probs.shape == (4, len(SHAPES))


@pytest.mark.slow
def test_a_set_not_evaluated_yet_searches_with_parameters_chosen_on_its_own_val(trained):
    """With theta, L and K left out, a small imported gallery is searched with values that fit it (the
    outfits' K = 1,000 or a fixed 200 would be refused by a 90-image gallery)."""
    from hashdemo.service.engine import Engine

    engine = Engine.load(cache_dir=trained, dataset="shapes")
    assert "test" not in engine.hier.metrics  # this module evaluates the set only after this test
    params = engine.check_params(*(engine.defaults[key] for key in ("theta", "L", "K")))  # in range
    assert params[2] <= len(engine.gallery_labels) < 200
    assert params[0] in THETAS and params[1] in TOP_LS
    answer = engine.search(engine.query_images[0], *params)
    assert len(answer.reranked.ids) == params[2]


@pytest.mark.slow
def test_evaluate_both_methods_on_an_imported_folder(trained, tmp_path, monkeypatch, capsys):
    """`evaluate hier|dcoh --dataset NAME`: the protocols that need item boxes are skipped with a note;
    the result goes beside the checkpoints (the app's Benchmarks reads it)."""
    from hashdemo.cli.evaluate import main as evaluate_main

    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(trained))
    assert evaluate_main(["hier", "--dataset", "shapes", "--json", str(tmp_path / "hier.json")]) == 0
    assert evaluate_main(["dcoh", "--dataset", "shapes"]) == 0
    printed = capsys.readouterr().out
    assert "Skipped: largest-item and attended-object protocols" in printed and "union" in printed
    hier = json.loads((tmp_path / "hier.json").read_text())
    assert {"global", "local_full", "hier_cam", "hier_random", "float_cosine"} <= set(hier["methods"])
    assert {"single_level", "single_level_local"} <= set(hier["methods"])  # trained, so shown
    assert 0 < hier["methods"]["hier_cam"]["map@100"] <= 1 and "dcoh_no_adv: not trained" in printed
    stored = json.loads((trained / "datasets/shapes/checkpoints/dcoh/metrics.json").read_text())["test"]
    assert stored["dataset"] == "shapes" and set(stored["operators"]) == {
        "union",
        "intersection",
        "difference",
    }
    assert evaluate_main(["hier", "--dataset", "unknown-set"]) == 2


@pytest.mark.slow
def test_the_app_serves_an_imported_folder_with_its_class_names(trained, tmp_path):
    """`HASHDEMO_DATASET=NAME python app.py`: /search and /compose answer in that set's class names."""
    from gradio_client import Client, handle_file

    from hashdemo.app.presenter import COMPOSE_OUTPUTS, SEARCH_OUTPUTS
    from hashdemo.harness.served_app import ServedApp

    query = load_dataset("shapes", trained).splits["query"]
    paths = []
    for i in range(3):
        Image.fromarray(query.images[i]).save(tmp_path / f"q{i}.png")
        paths.append(str(tmp_path / f"q{i}.png"))
    names = [[c for c, bit in zip(sorted(SHAPES), query.labels[i], strict=True) if bit] for i in range(3)]
    env = {"HASHDEMO_CACHE_DIR": str(trained), "HASHDEMO_DATASET": "shapes"}
    with ServedApp(env, log=tmp_path / "app.log") as app:
        client = Client(app.url, verbose=False)
        out = dict(
            zip(
                SEARCH_OUTPUTS,
                client.predict(handle_file(paths[0]), 0.4, 8, 20, api_name="/search"),
                strict=True,
            )
        )
        assert f"labels: **{', '.join(names[0])}**" in out["info"]
        assert all(any(shape in tile["caption"] for shape in SHAPES) for tile in out["reranked"])
        composed = client.predict(handle_file(paths[0]), handle_file(paths[1]), "union", api_name="/compose")
        summary = dict(zip(COMPOSE_OUTPUTS, composed, strict=True))["summary"]
        assert f"**A:** {', '.join(names[0])}" in summary and "Target set T" in summary


@pytest.mark.slow  # `python app.py` in its own process: ~6 s of imports before it can refuse
def test_a_set_without_its_models_stops_the_app_with_the_command_to_train_them(shapes, tmp_path):
    from hashdemo.harness.served_app import ROOT

    root, rows = shapes
    import_dataset("untrained", write_csv(tmp_path / "labels.csv", rows), root=root, cache_dir=tmp_path)
    env = {
        **__import__("os").environ,
        "HASHDEMO_CACHE_DIR": str(tmp_path),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    done = subprocess.run(
        [sys.executable, "app.py", "--dataset", "untrained"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert (
        "python -m hashdemo train hier --dataset untrained" in done.stderr and "Traceback" not in done.stderr
    )
