"""A real Milvus standalone server (the `milvus` PyPI package, a test requirement) on loopback, for the
integration tests and `python -m hashdemo bench milvus`.

The package's wrapper leaves its `milvus run standalone` child running when it is stopped with SIGTERM,
so `stop` ends the child by PID (and anything it started), waits for it, and checks it is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from milvus import MilvusServer, MilvusServerConfig

from hashdemo.harness.served_app import free_port

PORT_KEYS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)


class StandaloneServer:
    """`start()` waits for /healthz; `stop()` kills by PID; `remove()` deletes its files."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.ports = {key: free_port() for key in PORT_KEYS}  # fixed, so a restart keeps the address
        self.pid: int | None = None
        self._server: MilvusServer | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy_port']}"

    def start(self, timeout_s: float = 120) -> None:
        config = MilvusServerConfig(**self.ports)
        config.try_bind_port = _bind_reusable  # a restart finds its ports in TIME_WAIT
        server = MilvusServer(config, wait_for_started=False)
        server.set_base_dir(str(self.base_dir))
        server.start()
        self._server, self.pid = server, server.server_proc.pid
        server.wait_started(timeout=int(timeout_s * 1000))

    def _children(self) -> list[int]:
        out = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                out.append(int(status.parent.name))
        return out

    def stop(self) -> None:
        if self.pid is None:
            return
        pids = [self.pid, *self._children()]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 8  # it flushes on SIGTERM; a test server has nothing to keep
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        if self._server is not None:
            proc = self._server.server_proc
            if proc is not None:
                proc.wait(timeout=10)  # reap, so the PID is really gone
            for handle in self._server.proc_fds.values():
                handle.close()
            self._server.server_proc = None
        assert not any(_alive(pid) for pid in pids), f"Milvus processes {pids} outlived stop()"
        self.pid, self._server = None, None

    def remove(self) -> None:
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _bind_reusable(port: int) -> socket.socket | None:
    """The package's port check, with SO_REUSEADDR as the server itself binds (Go sets it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
