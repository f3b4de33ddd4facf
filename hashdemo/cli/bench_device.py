"""`python -m hashdemo bench device [--json PATH] [--quick]`: what a GPU buys, measured against this
machine's CPU in the same run, and whether its codes equal the CPU's.

- the frozen feature pass: a ResNet-50 (random weights: no download) over 224-px images, images/s at
  full precision and in mixed precision, on the compute device and on the CPU;
- one training epoch of the two-level model on the outfits' train split (the first `train_images`);
- the gallery encoding of the shipped two-level checkpoint, images/s on the device and on the CPU;
- agreement: the share of the gallery's global and local bits equal between the device's codes and the
  CPU's, and of the feature signs between mixed and full precision.

On a machine without CUDA the device is the CPU and the ratios are 1: the command is ready for whoever
has a GPU (about five minutes there); its JSON goes in docs/ with the card's name.
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np
import torch

from hashdemo.data.dataset import open_dataset
from hashdemo.model.backbones import build_backbone
from hashdemo.model.checkpoints import load_checkpoint
from hashdemo.model.device import autocast, placed, resolve_device
from hashdemo.model.networks import preprocess
from hashdemo.model.registry import model_config
from hashdemo.storage.files import write_atomic

SIZES = {
    "full": {"feature_images": 512, "train_images": 30000, "gallery_images": 10000},
    "quick": {"feature_images": 8, "train_images": 256, "gallery_images": 128},
}


def add_parser(sub) -> None:
    bench = sub.add_parser("device", help="a GPU against this machine's CPU: features, training, encoding")
    bench.add_argument("--json", type=str, default=None)
    bench.add_argument("--device", help="auto (default), cpu or cuda[:N]")
    bench.add_argument("--quick", action="store_true", help="a few images of each (a smoke test)")
    bench.set_defaults(func=cmd_device)


@torch.no_grad()
def feature_rate(backbone: torch.nn.Module, images: np.ndarray, device: torch.device, amp: bool) -> tuple:
    """(images/s, the pooled features) of one pass in batches of 32, after one warm-up batch."""
    backbone.eval()
    with placed(backbone, device):

        def run(batch):
            with autocast(device, amp):
                return backbone(preprocess(batch, "resnet50").to(device)).float().mean(dim=(2, 3)).cpu()

        run(images[:2])
        started = time.perf_counter()
        pooled = torch.cat([run(images[i : i + 32]) for i in range(0, len(images), 32)])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return len(images) / (time.perf_counter() - started), pooled.numpy()


def encode_rate(model, images: np.ndarray, device: torch.device) -> tuple:
    with placed(model, device):
        model.encode(images[:2])
        started = time.perf_counter()
        encoded = model.encode(images)
    return len(images) / (time.perf_counter() - started), encoded


def run(device_name: str | None = None, quick: bool = False) -> dict:
    from hashdemo.training.loop import fit  # here: the training layer only for this step

    device, cpu, sizes = resolve_device(device_name), torch.device("cpu"), SIZES["quick" if quick else "full"]
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (sizes["feature_images"], 224, 224, 3), dtype=np.uint8)
    backbone = build_backbone("resnet50", 2048)
    rate, full = feature_rate(backbone, photos, device, amp=False)
    rate_amp, mixed = feature_rate(backbone, photos, device, amp=True)
    rate_cpu, on_cpu = feature_rate(backbone, photos, cpu, amp=False)
    features = {
        "images": len(photos),
        "device_images_per_s": round(rate, 1),
        "device_amp_images_per_s": round(rate_amp, 1),
        "cpu_images_per_s": round(rate_cpu, 1),
        "amp_sign_agreement": float((np.sign(mixed) == np.sign(full)).mean()),
        "device_vs_cpu_max_abs_difference": float(np.abs(full - on_cpu).max()),
    }
    dataset = open_dataset()
    cfg = model_config("hier", epochs=1, train_size=sizes["train_images"])
    started = time.perf_counter()
    fit(cfg, dataset.splits, progress=False, device=str(device))
    training = {
        "images": min(sizes["train_images"], len(dataset.splits["train"])),
        "epoch_seconds": round(time.perf_counter() - started, 1),
    }
    gallery = dataset.splits["gallery"].images[: sizes["gallery_images"]]
    hier = load_checkpoint("hier", dataset.checkpoints).model
    device_rate, on_device = encode_rate(hier, gallery, device)
    cpu_rate, reference = encode_rate(hier, gallery, cpu)
    encoding = {
        "images": len(gallery),
        "device_images_per_s": round(device_rate, 1),
        "cpu_images_per_s": round(cpu_rate, 1),
        "global_bits_equal": float((on_device.global_bits == reference.global_bits).mean()),
        "local_bits_equal": float((on_device.local_bits == reference.local_bits).mean()),
    }
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    return {
        "device": str(device),
        "card": card,
        "torch": torch.__version__,
        "quick": quick,
        "cpu_threads": torch.get_num_threads(),
        "features": features,
        "training": training,
        "encoding": encoding,
    }


def cmd_device(args) -> None:
    result = run(args.device, args.quick)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        write_atomic(args.json, text + "\n")
