"""The models: backbones, hash heads, losses, CAM, code operators, configs and checkpoints."""
