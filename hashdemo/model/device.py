"""Where the networks compute: `--device auto|cpu|cuda[:N]` or `HASHDEMO_DEVICE`, `auto` (the default)
taking CUDA when torch sees it.

Models live on the CPU (the app's per-query work, the operators, the CAM maths); a batch pass over many
images (`HashNet.encode` of `DEVICE_BATCH_MIN` images or more, the frozen backbone's feature pass,
training) runs on the compute device and returns its results on the CPU. Codes computed on a GPU may
differ from the CPU's in boundary bits, so the caches of features and codes carry `device_tag()` in
their keys: CPU and GPU codes are never mixed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator

import torch
from torch import nn

ENV = "HASHDEMO_DEVICE"
DEVICE_BATCH_MIN = 64  # images: below this an encode stays where the model is (a query, a pair)
PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


class DeviceError(ValueError):
    """A device that cannot be used; the message says what to do."""


def resolve_device(name: str | None = None) -> torch.device:
    """The device named (default: HASHDEMO_DEVICE, else auto), checked against what this machine has."""
    name = (name or os.environ.get(ENV) or "auto").strip()
    if not PATTERN.fullmatch(name):
        raise DeviceError(f"The device is auto, cpu or cuda[:N] (got {name!r}).")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: this machine has no CUDA device; use --device cpu or auto.")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    return device


def device_tag(device: torch.device | None = None, amp: bool = False) -> str:
    """What a cache key adds for codes computed on `device`: nothing for the CPU at full precision."""
    device = device or resolve_device()
    tag = "" if device.type == "cpu" else f"-{device.type}"
    return tag + ("-amp" if amp else "")


@contextlib.contextmanager
def placed(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """`module` on `device` for the block, back where it was after."""
    home = next(module.parameters()).device
    if home == device:
        yield module
        return
    module.to(device)
    try:
        yield module
    finally:
        module.to(home)


def autocast(device: torch.device, enabled: bool):
    """Mixed precision for a forward pass: float16 on CUDA, bfloat16 on the CPU."""
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", help="auto (default: CUDA when present), cpu or cuda[:N]; or set HASHDEMO_DEVICE"
    )


def apply_device_option(args: argparse.Namespace) -> torch.device:
    """Check --device (or HASHDEMO_DEVICE) and make it the process's compute device."""
    device = resolve_device(args.device)
    os.environ[ENV] = str(device)
    return device
