"""The device plumbing: --device and HASHDEMO_DEVICE checked in one line, batch passes on the compute
device with their results on the CPU, mixed precision checked against full precision, caches keyed by
where codes were computed. The checks that need a GPU are written and skipped without one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashdemo.model.backbones import build_backbone
from hashdemo.model.device import DeviceError, device_tag, placed, resolve_device
from hashdemo.model.features import pooled_features
from hashdemo.model.networks import HashNet

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def test_auto_and_cpu_resolve_and_bad_names_say_what_is_allowed(monkeypatch):
    monkeypatch.delenv("HASHDEMO_DEVICE", raising=False)
    assert resolve_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("HASHDEMO_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu") and device_tag() == ""
    for bad in ("gpu", "cuda:x", "cpu0"):
        with pytest.raises(DeviceError, match="auto, cpu or cuda"):
            resolve_device(bad)
    assert device_tag(torch.device("cpu"), amp=True) == "-amp"
    assert device_tag(torch.device("cuda", 0)) == "-cuda"  # GPU codes never share a CPU cache file


@no_cuda
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "hier", "--device", "cuda", "--epochs", "1"],
        ["evaluate", "hier", "--device", "cuda"],
        ["gallery-codes", "--device", "cuda:1"],
    ],
)
def test_asking_for_cuda_without_one_is_one_line_and_exit_2(argv, capsys, tmp_path, monkeypatch):
    from hashdemo.__main__ import main

    monkeypatch.setenv("HASHDEMO_CACHE_DIR", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "this machine has no CUDA device" in err and "Traceback" not in err and err.count("\n") == 1


def test_a_batch_encode_gives_the_codes_of_one_image_at_a_time_and_leaves_the_model_home(monkeypatch):
    monkeypatch.setenv("HASHDEMO_DEVICE", "cpu")
    torch.manual_seed(0)
    model = HashNet(conv7_channels=16, bits=8, n_classes=4).eval()
    images = np.random.default_rng(0).integers(0, 256, (70, 32, 32, 3), dtype=np.uint8)  # >= a batch
    whole = model.encode(images, batch_size=32)
    one_by_one = [model.encode(images[i : i + 1]) for i in range(len(images))]
    np.testing.assert_array_equal(whole.global_bits, np.concatenate([e.global_bits for e in one_by_one]))
    np.testing.assert_array_equal(whole.local_bits, np.concatenate([e.local_bits for e in one_by_one]))
    assert next(model.parameters()).device.type == "cpu" and not model.training
    with placed(model, torch.device("cpu")) as same:
        assert same is model


def test_mixed_precision_features_agree_with_full_precision_and_cache_apart(tmp_path, monkeypatch):
    """bfloat16 on the CPU (float16 on CUDA): signs of the pooled features mostly equal to float32's;
    the mixed-precision result is cached under its own key, never read as the full-precision one."""
    monkeypatch.setenv("HASHDEMO_DEVICE", "cpu")
    torch.manual_seed(0)
    backbone = build_backbone("cnn7", 32)
    images = np.random.default_rng(1).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    full = pooled_features(backbone, "cnn7", images, tmp_path / "full.npy", progress=False)
    mixed = pooled_features(
        backbone, "cnn7", images, tmp_path / f"f{device_tag(amp=True)}.npy", progress=False, amp=True
    )
    centred = full - full.mean(axis=0)
    agreement = (np.sign(centred) == np.sign(mixed - full.mean(axis=0))).mean()
    assert agreement >= 0.9 and not np.array_equal(full, mixed)  # close, but computed differently
    assert np.abs(mixed - full).max() < 0.1 * np.abs(full).max()
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == ["f-amp.npy", "full.npy"]


def test_a_training_state_records_the_cuda_generator_slot(tmp_path):
    """A resumed run restores the CUDA generator too: the saved state has its slot (empty on a CPU)."""
    from hashdemo.model.registry import model_config
    from hashdemo.training.loop import HierTraining, save_progress

    cfg = model_config("hier", n_classes=4, image_size=32, conv7_channels=16, bits=8)
    training = HierTraining(cfg)
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(training.optimizers[0], 4)]
    path = tmp_path / "progress.pt"
    save_progress(
        path, cfg, 1, 0.0, [], (None, None), training, schedulers, np.random.default_rng(0), torch.Generator()
    )
    saved = torch.load(path, weights_only=True)
    assert saved["cuda_rng"] == ([] if not torch.cuda.is_available() else saved["cuda_rng"])


@needs_cuda
def test_cuda_codes_match_the_cpus_but_for_few_boundary_bits(monkeypatch):
    torch.manual_seed(0)
    model = HashNet(conv7_channels=64, bits=32, n_classes=4).eval()
    images = np.random.default_rng(0).integers(0, 256, (256, 64, 64, 3), dtype=np.uint8)
    monkeypatch.setenv("HASHDEMO_DEVICE", "cpu")
    cpu = model.encode(images)
    monkeypatch.setenv("HASHDEMO_DEVICE", "cuda")
    gpu = model.encode(images)
    assert (cpu.global_bits == gpu.global_bits).mean() > 0.99 and (
        cpu.local_bits == gpu.local_bits
    ).mean() > 0.99
    assert next(model.parameters()).device.type == "cpu"


@needs_cuda
def test_a_training_on_cuda_resumes_bit_for_bit(tmp_path):
    from hashdemo.model.registry import model_config
    from hashdemo.training.loop import fit

    torch.backends.cudnn.deterministic = True
    rng = np.random.default_rng(0)
    from hashdemo.data.split import Split

    def split(name, n):
        labels = rng.integers(0, 2, (n, 4)).astype(np.uint8)
        labels[labels.sum(axis=1) == 0, 0] = 1
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return Split(
            name,
            images,
            labels,
            *(np.full((n, 0), -1, t) for t in (np.int32, np.int8)),
            np.full((n, 0, 4), -1, np.int16),
        )

    splits = {"train": split("train", 256), "val": split("val", 64)}
    cfg = model_config("hier", n_classes=4, image_size=32, conv7_channels=16, bits=8, epochs=2, batch_size=32)
    whole = fit(cfg, splits, progress=False, device="cuda")
    assert all(t.device.type == "cpu" for t in whole["state"]["model"].values())


@pytest.mark.slow
def test_bench_device_writes_its_json(tmp_path):
    """`bench device --quick`: each measurement and the agreement with the CPU (1.0 on a CPU-only run)."""
    import json

    from hashdemo.cli.bench import main

    main(["device", "--quick", "--json", str(tmp_path / "device.json")])
    result = json.loads((tmp_path / "device.json").read_text())
    assert set(result) >= {"device", "card", "features", "training", "encoding"}
    assert result["features"]["cpu_images_per_s"] > 0 and result["training"]["epoch_seconds"] > 0
    if result["device"] == "cpu":
        assert (
            result["encoding"]["global_bits_equal"] == 1.0 and result["encoding"]["local_bits_equal"] == 1.0
        )
