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
# far beyond the longest wait in the queue (a few seconds: docs/operating.md, the load test) plus a
# response's picture downloads
GRACE_S = 60
# A pass prunes when over 90% of the cap (the rest absorbs what is written between passes) and goes
# down to 70%, so a burst does not prune on every pass.
HIGH_WATER, LOW_WATER = 0.9, 0.7


def budget_from_env(folders: list[Path], named_by: Path) -> DiskBudget:
    """The budget HASHDEMO_CACHE_MAX_MB (default 500) and HASHDEMO_CACHE_GRACE_S (default 60) set;
    a bad value is refused with a sentence."""
    return DiskBudget(
        folders,
        int(_positive_env("HASHDEMO_CACHE_MAX_MB", DEFAULT_MAX_MB, "megabytes") * 2**20),
        grace_s=_positive_env("HASHDEMO_CACHE_GRACE_S", GRACE_S, "seconds"),
        named_by=named_by,
    )


def _positive_env(name: str, default: float, unit: str) -> float:
    text = os.environ.get(name, str(default))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of {unit}, got {text!r}.")
    return value


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
        """One pass: drop files past the age limit, then, when over HIGH_WATER of the cap, the oldest
        until under LOW_WATER. Returns what it did."""
        now = time.time() if now is None else now
        files = [entry for folder in self.folders for entry in self._files(folder)]
        total = sum(size for _, size, _ in files)
        removable = sorted(
            (named, path, size)
            for path, size, named in files
            if now - named > self.grace_s and not any(fnmatch.fnmatch(path.name, p) for p in self.keep)
        )
        removed, freed = 0, 0
        over = total > HIGH_WATER * self.max_bytes
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

    def run_every(self, seconds: float | None = None) -> threading.Thread:
        """Prune in a daemon thread every `seconds` (default: a tenth of the grace period, 0.5-5 s);
        an error is logged and the next pass tries again."""
        seconds = seconds or min(5.0, max(0.5, self.grace_s / 10))

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
