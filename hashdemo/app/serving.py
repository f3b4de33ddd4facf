"""Where the server listens: hashdemo's own variables first, then Gradio's (what Hugging Face Spaces and
Docker set), then loopback on 7860."""

from __future__ import annotations

import os
from collections.abc import Mapping

VARIABLES = {
    "server_name": ("HASHDEMO_HOST", "GRADIO_SERVER_NAME"),
    "server_port": ("HASHDEMO_PORT", "GRADIO_SERVER_PORT"),
}
DEFAULTS = {"server_name": "127.0.0.1", "server_port": "7860"}


def listen_settings(environ: Mapping[str, str] = os.environ) -> dict:
    """{"server_name", "server_port"} for gr.Blocks.launch, or ValueError with a sentence for a bad port."""
    chosen = {
        key: next((environ[name] for name in names if environ.get(name)), DEFAULTS[key])
        for key, names in VARIABLES.items()
    }
    port = chosen["server_port"].strip()
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port!r}")
    return {"server_name": chosen["server_name"], "server_port": int(port)}
