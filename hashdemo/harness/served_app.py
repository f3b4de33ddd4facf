"""`python app.py` in its own process on a free loopback port, as a user runs it: for the load and soak
benchmarks and the tests that need a separate server (crash, Milvus)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedApp:
    """`with ServedApp(env) as app:` starts `python app.py` and waits until it answers; `app.url`,
    `app.proc`; leaving the block terminates it. `env` is added to this process's environment
    (a value of None removes the variable); the server's log goes to `log` (default: discarded)."""

    def __init__(
        self, env: dict[str, str | None] | None = None, log: Path | None = None, timeout_s: float = 240
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        merged = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        merged.update({"HASHDEMO_HOST": "127.0.0.1", "HASHDEMO_PORT": str(self.port)})
        merged.pop("GRADIO_TEMP_DIR", None)  # the server's own default, under its cache
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        self.env, self.log, self.timeout_s = merged, log, timeout_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServedApp:
        out = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the app exited with status {self.proc.returncode}; run `python app.py` to see why"
                    ) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the app did not answer within {self.timeout_s:.0f} s") from None
                time.sleep(0.5)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def rss_mb(self) -> float:
        """The server's resident memory now."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def plain_answer(value):
    """A gradio_client answer without the client's download folder: picture paths become their
    file names, which are content addresses, so two servers' answers compare equal when equal."""
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    if isinstance(value, dict):
        return {k: plain_answer(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_answer(v) for v in value]
    return value


def link_default_caches(
    cache: Path, patterns: tuple[str, ...] = ("outfits-*.npz", "gallery-codes-*.npz")
) -> None:
    """Hard-link the default cache's files matching `patterns` (the dataset, the 10k gallery's codes)
    into `cache`, so a server or build there starts without rebuilding them (copied across file systems)."""
    from hashdemo.storage.locations import default_cache_dir

    cache.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for source in default_cache_dir().glob(pattern):
            try:
                os.link(source, cache / source.name)
            except OSError:  # another file system
                shutil.copy2(source, cache / source.name)
