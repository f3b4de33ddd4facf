"""Bounded disk for a long-running server: the pictures the app draws and Gradio's upload and output
cache are pruned by size and age, oldest first.

A file named within the last `grace_s` seconds is never deleted: a response still being delivered
names only files written or re-named that recently (`OutputFiles` refreshes a reused picture's mtime,
and Gradio's copy of a picture counts as named when the picture is). Files matching `keep` (the
Benchmarks figures, drawn once per start and named by the page itself) are never pruned.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_MAX_MB = 500
MAX_AGE_S = 24 * 3600  # an upload or picture unused for a day goes, whatever the size
GRACE_S = 300  # far beyond the queue's longest wait plus a picture's download
LOW_WATER = 0.7  # prune down to 70% of the cap, so a burst does not prune on every pass


def max_bytes_from_env() -> int:
    """HASHDEMO_CACHE_MAX_MB (default 500) in bytes; a bad value is refused with a sentence."""
    text = os.environ.get("HASHDEMO_CACHE_MAX_MB", str(DEFAULT_MAX_MB))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"HASHDEMO_CACHE_MAX_MB must be a positive number of megabytes, got {text!r}.")
    return int(value * 2**20)


@dataclass
class DiskBudget:
    folders: list[Path]
    max_bytes: int
    max_age_s: float = MAX_AGE_S
    grace_s: float = GRACE_S
    keep: tuple[str, ...] = ("figure-*.png",)
    named_by: Path | None = None  # the app's pictures: Gradio's copy of one is named when the original is

    def usage(self) -> dict[str, int]:
        """Bytes under each folder."""
        return {str(folder): sum(size for _, size, _ in self._files(folder)) for folder in self.folders}

    def _files(self, folder: Path):
        """(path, size, last named) for every file under `folder`."""
        for root, _, names in os.walk(folder):
            for name in names:
                path = Path(root, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed meanwhile (a rename, another pruner)
                    continue
                named = stat.st_mtime
                if self.named_by is not None and folder != self.named_by:
                    twin = self.named_by / name
                    with contextlib.suppress(FileNotFoundError):
                        named = max(named, twin.stat().st_mtime)
                yield path, stat.st_size, named

    def prune(self, now: float | None = None) -> dict:
        """One pass: drop files past the age limit, then the oldest until under LOW_WATER of the cap
        (only when over the cap). Returns what it did."""
        now = time.time() if now is None else now
        files = [entry for folder in self.folders for entry in self._files(folder)]
        total = sum(size for _, size, _ in files)
        removable = sorted(
            (named, path, size)
            for path, size, named in files
            if now - named > self.grace_s and not any(fnmatch.fnmatch(path.name, p) for p in self.keep)
        )
        removed, freed = 0, 0
        over = total > self.max_bytes
        for named, path, size in removable:
            too_old = now - named > self.max_age_s
            if not too_old and not (over and total - freed > LOW_WATER * self.max_bytes):
                continue
            try:
                if now - path.stat().st_mtime <= self.grace_s:
                    continue  # named again since the scan
                path.unlink()
            except FileNotFoundError:
                continue
            removed, freed = removed + 1, freed + size
            _remove_empty_parent(path, self.folders)
        if removed:
            left = (total - freed) / 2**20
            log.info("disk: removed %d files (%.1f MB); %.1f MB left", removed, freed / 2**20, left)
        return {"removed": removed, "freed_bytes": freed, "bytes_before": total}

    def run_every(self, seconds: float) -> threading.Thread:
        """Prune in a daemon thread every `seconds`; an error is logged and the next pass tries again."""

        def loop() -> None:
            while True:
                try:
                    self.prune()
                except Exception:  # a pruning failure must never take the server down
                    log.exception("disk: pruning failed")
                time.sleep(seconds)

        thread = threading.Thread(target=loop, name="hashdemo-disk-budget", daemon=True)
        thread.start()
        return thread


def _remove_empty_parent(path: Path, roots: list[Path]) -> None:
    """Gradio keeps each cached file in a folder of its own; drop the folder when it empties."""
    parent = path.parent
    if parent not in roots:
        with contextlib.suppress(OSError):
            parent.rmdir()
