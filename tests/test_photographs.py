"""Photographs (issue 29): torchvision backbones, their weights, frozen features cached, photo-sized
images and an import that streams. Nothing here downloads: HASHDEMO_OFFLINE=1 (conftest) and random
weights written to a file stand in for ImageNet's."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from test_datasets import SHAPES, write_csv, write_folder

from hashdemo.cli.bench_photos import run_child, write_photos
from hashdemo.cli.train import main as train_main
from hashdemo.data.imported import DatasetError, import_dataset, load_dataset
from hashdemo.model import features as feature_cache
from hashdemo.model.backbones import TorchvisionTrunk
from hashdemo.model.cam import ATTENTION_SIZE
from hashdemo.model.networks import HashNet, preprocess
from hashdemo.model.registry import model_config
from hashdemo.model.weights import WeightsError, backbone_weights

SIZE = 96  # larger than the outfits' 64, small enough for a ResNet on two cores


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A whole resnet18's random state dict in a file, as `torch.save(model.state_dict(), FILE)` writes."""
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pt"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory, random_weights):
    """A folder imported at SIZE px and hier and dcoh trained on it with frozen random resnet18 weights."""
    root = tmp_path_factory.mktemp("photo-folder")
    rows = write_folder(root, 240, seed=3)
    cache = tmp_path_factory.mktemp("photo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HASHDEMO_CACHE_DIR", str(cache))
        import_dataset("photos", write_csv(root / "labels.csv", rows), size=SIZE)
        common = ["--dataset", "photos", "--backbone", "resnet18", "--weights", str(random_weights)]
        assert train_main(["hier", *common, "--epochs", "2"]) == 0
        assert train_main(["dcoh", *common, "--epochs", "2", "--operator-steps", "30"]) == 0
    return cache


def test_a_torchvision_backbone_sets_the_local_code_and_keeps_the_cam_exact():
    cfg = model_config("hier", backbone="resnet18", image_size=SIZE)
    assert cfg.conv7_channels == 512 and cfg.weights == "imagenet" and cfg.frozen_backbone
    assert model_config("single_level_local", backbone="resnet50").bits == 2048
    assert model_config("single_level_local").bits == 256  # the outfits' CNN: C = 256, as shipped
    with pytest.raises(ValueError, match="2048 channels, not 256"):
        model_config("hier", backbone="resnet50", conv7_channels=256)
    torch.manual_seed(0)
    model = HashNet(512, 32, 5, backbone="resnet18", frozen_backbone=True).eval()
    images = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    out = model(preprocess(images, "resnet18"))
    assert out.conv7.shape == (3, 512, SIZE // 32, SIZE // 32) and (out.conv7 >= 0).all()
    # each global bit's pre-activation is linear in the pooled maps: the CAM's weights reproduce it
    pooled = out.conv7.mean(dim=(2, 3))
    centred = (pooled - pooled.mean(0)) @ model.cam_weights().T
    torch.testing.assert_close(centred, out.global_pre - out.global_pre.mean(0), atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training and model.local_norm.training  # its BatchNorm stays pretrained


def test_torchvision_backbones_get_imagenet_normalisation_from_torchvision():
    from torchvision.transforms.functional import normalize, to_tensor

    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    weights = torchvision.models.ResNet50_Weights.DEFAULT.transforms()
    expected = normalize(to_tensor(image), weights.mean, weights.std)
    torch.testing.assert_close(preprocess(image[None], "resnet50")[0], expected)
    assert preprocess(image[None]).min() >= -1 and preprocess(image[None]).max() <= 1  # cnn7: [-1, 1]


@pytest.mark.slow  # builds torchvision backbones
def test_offline_imagenet_weights_are_refused_in_one_line_naming_file_and_folder(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HASHDEMO_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"put resnet18-f37072fd\.pth .* in .*torch/hub/checkpoints"):
        backbone_weights("resnet18", "imagenet")
    assert train_main(["hier", "--backbone", "resnet18", "--weights", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HASHDEMO_OFFLINE=1 forbids downloading" in err and "Traceback" not in err


def test_a_weights_file_in_torchs_hub_folder_is_used_offline(tmp_path, monkeypatch, random_weights):
    """ImageNet weights already where torchvision keeps them are read without the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HASHDEMO_OFFLINE", "1")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(random_weights.read_bytes())
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried the network"))
    loaded = backbone_weights("resnet18", "imagenet")  # torchvision checks a hash only when it downloads
    assert loaded.digest == "imagenet-resnet18-f37072fd"
    stored = torch.load(random_weights, weights_only=True)
    assert torch.equal(loaded.state["body.0.weight"], stored["conv1.weight"])  # the file's, not a random init


@pytest.mark.slow  # builds torchvision backbones
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: torch.save(torchvision.models.resnet50().state_dict(), p), "does not fit resnet18"),
        (lambda p: torch.save({"conv1.weight": torch.zeros(3)}, p), "does not fit resnet18"),
        (lambda p: p.write_bytes(b"not a checkpoint"), "cannot be read as a state dict"),
        (lambda p: None, "does not exist"),
    ],
)
def test_a_wrong_weights_file_is_refused_in_one_line(make, message, tmp_path, capsys):
    path = tmp_path / "weights.pt"
    make(path)
    with pytest.raises(WeightsError, match=message):
        backbone_weights("resnet18", str(path))
    assert train_main(["hier", "--backbone", "resnet18", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    with pytest.raises(WeightsError, match="trained from scratch"):
        backbone_weights("cnn7", str(path))


def test_the_frozen_feature_pass_resumes_where_it_was_interrupted(tmp_path, monkeypatch):
    monkeypatch.setattr(feature_cache, "CHUNK", 8)
    monkeypatch.setattr(feature_cache, "BATCH", 4)
    images = np.random.default_rng(2).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    torch.manual_seed(0)
    backbone = TorchvisionTrunk("resnet18").eval()
    expected = feature_cache.pooled_features(backbone, "resnet18", images, tmp_path / "whole.npy", False)
    calls = {"n": 0}
    forward = backbone.forward

    def dies_after_five_batches(x):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return forward(x)

    monkeypatch.setattr(backbone, "forward", dies_after_five_batches)
    with pytest.raises(KeyboardInterrupt):
        feature_cache.pooled_features(backbone, "resnet18", images, tmp_path / "resumed.npy", False)
    assert len(list((tmp_path / "resumed.npy.parts").glob("*.npy"))) == 2  # two chunks of 8 finished
    calls["n"] = -100  # the rest may run
    resumed = feature_cache.pooled_features(backbone, "resnet18", images, tmp_path / "resumed.npy", False)
    assert calls["n"] == -100 + 4  # 14 images left: batches of 4, 4 (chunk 3), 4, 2 (chunk 4)
    np.testing.assert_allclose(resumed, expected, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "resumed.npy.parts").exists()


@pytest.mark.slow
def test_random_weights_from_a_file_train_evaluate_and_serve_a_larger_folder(photos, tmp_path, monkeypatch):
    from hashdemo.cli.evaluate import main as evaluate_main
    from hashdemo.model.checkpoints import load_checkpoint
    from hashdemo.service.engine import Engine

    checkpoints = photos / "datasets" / "photos" / "checkpoints"
    hier = load_checkpoint("hier", checkpoints)
    assert hier.config.backbone == "resnet18" and hier.config.image_size == SIZE
    assert hier.metrics["backbone_weights"].startswith("file-") and hier.metrics["val"]["selection"] > 0
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(photos))
    assert evaluate_main(["hier", "--dataset", "photos", "--json", str(tmp_path / "hier.json")]) == 0
    assert 0 < json.loads((tmp_path / "hier.json").read_text())["methods"]["hier_cam"]["map@100"] <= 1
    assert evaluate_main(["dcoh", "--dataset", "photos"]) == 0
    engine = Engine.load(cache_dir=photos, dataset="photos")
    query = engine.query_images[0]
    assert query.shape == (SIZE, SIZE, 3)
    answer = engine.search(query, 0.4, 8, 20)  # the attention follows the backbone's 3x3 maps
    assert answer.attention.conv7.shape == (512, SIZE // 32, SIZE // 32)
    boxed = engine.search(query, 0.4, 8, 20, box=(48, 0, SIZE - 1, 47))  # the lower left quarter
    assert boxed.attention.region.shape == (ATTENTION_SIZE, ATTENTION_SIZE)
    assert boxed.attention.region[32:, :32].all() and boxed.attention.region.sum() == 32 * 32
    assert len(answer.reranked.ids) == 20 and answer.query.labels is not None  # a known query image
    composed = engine.compose(engine.query_images[0], engine.query_images[1], "union")
    assert composed.target is not None and len(composed.composed.ids) > 0


@pytest.mark.slow
def test_the_frozen_features_are_computed_once_and_reused_by_the_next_run(
    photos, random_weights, monkeypatch
):
    cached = sorted((photos / "datasets" / "photos" / "features").glob("*.npy"))
    names = [p.name.rsplit("-", 1)[-1] for p in cached]
    # hier and dcoh share train and val's; serving made one gallery pass, shared by both models
    assert names in (["train.npy", "val.npy"], ["gallery.npy", "train.npy", "val.npy"]), names
    stamps = [p.stat().st_mtime_ns for p in cached]
    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(photos))
    monkeypatch.setattr(TorchvisionTrunk, "forward", lambda *a: pytest.fail("the backbone ran again"))
    args = ["single_level", "--dataset", "photos", "--backbone", "resnet18", "--weights", str(random_weights)]
    assert train_main([*args, "--epochs", "1"]) == 0
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def test_the_import_size_is_checked(tmp_path):
    (tmp_path / "l.csv").write_text("path,labels\n")
    with pytest.raises(DatasetError, match="between 16 and 448"):
        import_dataset("big", tmp_path / "l.csv", size=512, cache_dir=tmp_path)


@pytest.mark.slow
def test_the_import_streams_so_its_peak_memory_does_not_grow_with_the_folder(tmp_path):
    """Importing 3x the photos at 256 px must not cost the pixels' bytes in memory (it held them twice)."""
    labels = write_photos(tmp_path / "photos", 600)
    small = labels.parent / "labels-first-200.csv"
    small.write_text("".join(labels.read_text().splitlines(keepends=True)[:201]))
    peaks = {}
    for name, source in (("small", small), ("large", labels)):
        env = {"HASHDEMO_CACHE_DIR": str(tmp_path / f"cache-{name}")}
        args = ["data", "import", "photos", "--csv", str(source), "--size", "256"]
        _, peaks[name] = run_child(args, env, log=tmp_path / "import.log")
    pixels_mb = 400 * 256 * 256 * 3 / 2**20  # what the 400 more photos weigh
    assert peaks["large"] - peaks["small"] < 0.25 * pixels_mb, (peaks, pixels_mb)
    dataset = load_dataset("photos", tmp_path / "cache-large")
    assert (
        isinstance(dataset.splits["train"].images, np.memmap)
        and sum(map(len, dataset.splits.values())) == 600
    )


@pytest.mark.slow
def test_a_killed_reimport_leaves_the_previous_import_whole(tmp_path):
    root = tmp_path / "folder"
    rows = write_folder(root, 220, seed=5)
    csv_path = write_csv(root / "labels.csv", rows)
    import_dataset("kept", csv_path, size=48, cache_dir=tmp_path)
    before = load_dataset("kept", tmp_path)
    write_csv(csv_path, rows[:-5])  # a changed CSV re-imports
    env = {
        **os.environ,
        "HASHDEMO_CACHE_DIR": str(tmp_path),
        "HASHDEMO_KILL_BEFORE_RENAME": "images-*-gallery.npy",
    }
    args = [
        sys.executable,
        "-m",
        "hashdemo",
        "data",
        "import",
        "kept",
        "--csv",
        str(csv_path),
        "--size",
        "48",
    ]
    assert subprocess.run(args, env=env, capture_output=True).returncode == -9
    after = load_dataset("kept", tmp_path)
    assert after.meta == before.meta
    np.testing.assert_array_equal(after.splits["gallery"].images, before.splits["gallery"].images)
    del env["HASHDEMO_KILL_BEFORE_RENAME"]
    assert subprocess.run(args, env=env, capture_output=True).returncode == 0
    assert load_dataset("kept", tmp_path).meta["rows"] == 215
    names = {p.name for p in (tmp_path / "datasets" / "kept").iterdir()}
    assert len([n for n in names if n.startswith("images-")]) == 4 and not any(
        n.startswith(".") for n in names
    )
    assert set(SHAPES) >= set(after.classes)


@pytest.mark.slow
def test_the_app_serves_the_photo_models_panels_at_their_map_size(photos, tmp_path):
    """`/search` on the served app with resnet18 models at 96 px: the query's panels and result rows come
    back (the attention's 64-px maps drawn over a 96-px photo)."""
    from gradio_client import Client, handle_file
    from PIL import Image

    from hashdemo.app.presenter import SEARCH_OUTPUTS
    from hashdemo.harness.served_app import ServedApp

    query = load_dataset("photos", photos).splits["query"]
    Image.fromarray(np.asarray(query.images[0])).save(tmp_path / "q.png")
    env = {"HASHDEMO_CACHE_DIR": str(photos), "HASHDEMO_DATASET": "photos"}
    with ServedApp(env, log=tmp_path / "app.log") as app:
        client = Client(app.url, verbose=False)
        out = dict(
            zip(
                SEARCH_OUTPUTS,
                client.predict(handle_file(str(tmp_path / "q.png")), 0.4, 8, 20, api_name="/search"),
                strict=True,
            )
        )
    assert "labels: **" in out["info"] and len(out["reranked"]) == 10
    assert "Traceback" not in (tmp_path / "app.log").read_text()
