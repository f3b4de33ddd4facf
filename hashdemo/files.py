"""Atomic file writes: readers see the old file or the complete new one, never a partial write."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np


@contextlib.contextmanager
def _atomic(path: str | os.PathLike, durable: bool) -> Iterator[BinaryIO]:
    """A temporary file beside `path`, renamed into place when the block ends without an error
    (flushed to disk first if `durable`), removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are plain shareable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str, durable: bool = True) -> Path:
    """Write `data` atomically; `durable=False` skips the fsync, for caches that are cheap to redraw."""
    with _atomic(path, durable) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def savez_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """`np.savez` of `arrays`, written atomically (a crash never leaves a half-written cache)."""
    with _atomic(path, durable=True) as f:
        np.savez(f, **arrays)
    return Path(path)
