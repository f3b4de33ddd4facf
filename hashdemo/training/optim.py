"""The optimizer every model trains with, and one update step."""

from __future__ import annotations

import torch

from hashdemo.model.config import TrainConfig


def adamw(params, cfg: TrainConfig, **kwargs) -> torch.optim.AdamW:
    """AdamW decaying only weight matrices and conv kernels, never norm weights or biases
    (as nanoGPT's configure_optimizers does): decaying a BatchNorm scale shrinks the code's margins."""
    params = list(params)
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, kwargs.pop("lr", cfg.lr), **kwargs)


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
