"""Where things live: the repository's shipped checkpoints and assets, and the per-user cache."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"  # the shipped models, committed
ASSETS_DIR = REPO_ROOT / "assets"  # figures the README and the app show
# What reading a damaged or half-written cache file can raise: the file is then rebuilt.
CACHE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def default_cache_dir() -> Path:
    """``$HASHDEMO_CACHE_DIR`` or ``~/.cache/hashdemo``."""
    env = os.environ.get("HASHDEMO_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hashdemo"
