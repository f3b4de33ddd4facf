"""Atomic file writes: readers see the old file or the complete new one, never a partial write.

A temporary file carries its writer's PID, so the next start can remove those whose writer died
(`remove_orphaned_writes`). HASHDEMO_KILL_BEFORE_RENAME=GLOB is the crash tests' fault injection:
the process SIGKILLs itself with a complete temporary file of a matching name not yet renamed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are plain shareable files
        kill_at = os.environ.get("HASHDEMO_KILL_BEFORE_RENAME")
        if kill_at and fnmatch.fnmatch(path.name, kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_orphaned_writes(directory: str | os.PathLike) -> int:
    """Remove temporary files under `directory` whose writing process is gone (killed mid-write);
    returns how many. The complete file they were meant to become is rebuilt by whoever needs it."""
    removed = 0
    for tmp in Path(directory).rglob(".*.tmp"):
        pid = tmp.name[: -len(".tmp")].rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def atomic_file(path: str | os.PathLike) -> contextlib.AbstractContextManager[BinaryIO]:
    """A file opened for writing that appears at `path` complete (fsynced) when the block ends, or not at
    all: for files streamed in pieces too large to hold in memory."""
    return _atomic(path, durable=True)


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
