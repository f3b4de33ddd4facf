"""The real app, served once per test session on a free loopback port. Nothing the tests run may download:
the offline switch is on for this process and every process it starts."""

import os
import socket

import pytest

os.environ["HASHDEMO_OFFLINE"] = "1"

# as every entry point does (`python app.py`, `python -m hashdemo`): the tests compute as they do (glibc's
# malloc settings change allocations' alignment, and so the last float bits of some kernels)
from hashdemo.runtime import configure_malloc  # noqa: E402

configure_malloc()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def engine():
    """One in-process engine for every test that only reads it (searches and compositions): the app's
    own (`Engine.load()` at its import), so a session that also serves the app loads the checkpoints,
    the dataset and every model's gallery codes once, and holds them in memory once."""
    import app

    return app.engine


@pytest.fixture(scope="session")
def served():
    """(the app module, its base URL): `import app` loads both checkpoints and the 10k gallery."""
    import app

    port = free_port()
    app.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    yield app, f"http://127.0.0.1:{port}/"
    app.demo.close()
