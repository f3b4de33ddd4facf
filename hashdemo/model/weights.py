"""Pretrained weights for a torchvision backbone: `--weights imagenet|FILE|none`.

`imagenet` goes through torchvision's own weights API: on a machine with the internet it downloads into
torch's hub cache as torchvision does; with the file already in `$TORCH_HOME/hub/checkpoints/` under
torchvision's file name it reads it and never touches the network. `HASHDEMO_OFFLINE=1` forbids the
download: a missing file is then a WeightsError naming the file and the folder. FILE is a state dict of
the whole torchvision classifier (what `torch.save(model.state_dict(), FILE)` writes); one that does not
fit the backbone is refused. Every refusal is one sentence, fit to print.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from hashdemo.model.backbones import TorchvisionTrunk, backbone_spec

IMAGENET, NONE = "imagenet", "none"
OFFLINE = "HASHDEMO_OFFLINE"


class WeightsError(ValueError):
    """The weights cannot be had or do not fit; the message says what to do."""


@dataclass(frozen=True)
class BackboneWeights:
    state: dict[str, torch.Tensor] | None  # the trunk's state dict; None: the backbone's own random init
    digest: str  # what cached features are keyed by: "none", "imagenet-<file stem>" or "file-<sha256[:16]>"


def backbone_weights(backbone: str, weights: str, seed: int = 0) -> BackboneWeights:
    """The trunk weights `weights` names for `backbone`, or a WeightsError. `none` for a torchvision
    backbone is its random init drawn with `seed`, so its cached features and its checkpoint agree."""
    spec = backbone_spec(backbone)
    if weights == NONE and spec.torchvision is None:
        return BackboneWeights(None, NONE)  # trained from scratch with the model's own init
    if weights == NONE:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return BackboneWeights(TorchvisionTrunk(spec.torchvision).state_dict(), f"{NONE}-seed{seed}")
    if spec.torchvision is None:
        raise WeightsError(
            f"{backbone} is trained from scratch here; --weights applies to torchvision's backbones"
        )
    if weights == IMAGENET:
        state, digest = imagenet_state(spec.torchvision)
    else:
        state, digest = file_state(Path(weights))
    return BackboneWeights(trunk_state(spec.torchvision, state, weights), digest)


def imagenet_state(torchvision_name: str) -> tuple[dict, str]:
    """The default ImageNet weights through torchvision, which keeps (or downloads) them in torch's hub
    folder under the file name of their URL."""
    from torchvision.models import get_model_weights

    imagenet = get_model_weights(torchvision_name).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(imagenet.url).path)
    if os.environ.get(OFFLINE) == "1" and not path.is_file():
        raise WeightsError(
            f"{OFFLINE}=1 forbids downloading {torchvision_name}'s ImageNet weights: put {path.name} "
            f"(from {imagenet.url}) in {path.parent}, or train with --weights FILE"
        )
    try:
        state = imagenet.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # no network, a refused or damaged download
        raise WeightsError(f"{torchvision_name}'s ImageNet weights could not be had ({error})") from None
    return state, f"{IMAGENET}-{path.stem}"


def file_state(path: Path) -> tuple[dict, str]:
    if not path.is_file():
        raise WeightsError(
            f"the weights file {path} does not exist (--weights takes imagenet, none or a file)"
        )
    data = path.read_bytes()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one-line refusal
        raise WeightsError(f"{path} cannot be read as a state dict ({type(error).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} is not a state dict (names to tensors)")
    return state, f"file-{hashlib.sha256(data).hexdigest()[:16]}"


def trunk_state(torchvision_name: str, state: dict, source: str) -> dict[str, torch.Tensor]:
    """The trunk's state dict from a whole classifier's, refused in one sentence if it does not fit."""
    from torchvision.models import get_model

    classifier = get_model(torchvision_name, weights=None)
    expected = classifier.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    shapes = [k for k in expected.keys() & state.keys() if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        first = (missing or unexpected or sorted(shapes))[0]
        raise WeightsError(
            f"{source} does not fit {torchvision_name}: {len(missing)} missing, {len(unexpected)} unexpected "
            f"and {len(shapes)} mis-shaped tensors (first: {first})"
        )
    classifier.load_state_dict(state)
    return TorchvisionTrunk(torchvision_name, classifier).state_dict()
