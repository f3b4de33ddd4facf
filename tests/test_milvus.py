"""The Milvus gallery backend: the same answers as the in-process index, against milvus-lite (embedded,
one file) and a real Milvus standalone server started and stopped here."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from hashdemo.app.presenter import COMPOSE_OUTPUTS, SEARCH_OUTPUTS
from hashdemo.cli.query import main as query_main
from hashdemo.harness.milvus_server import StandaloneServer
from hashdemo.harness.served_app import ServedApp, free_port, plain_answer
from hashdemo.retrieval import milvus
from hashdemo.retrieval.index import HammingIndex, hierarchical_search
from hashdemo.service.engine import Engine

pytestmark = [pytest.mark.slow, pytest.mark.milvus]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    return milvus.MilvusGallery(str(tmp_path_factory.mktemp("milvus") / "gallery.db"))


def _codes(n, nbits, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (n, nbits), dtype=np.uint8), (rng.random((n, 10)) < 0.3).astype(np.uint8)


def test_search_equals_the_in_process_index_through_ties(lite):
    # 16-bit codes: thousands of ties, so every k below cuts through one
    bits, labels = _codes(3000, 16, 0)
    local_bits, _ = _codes(3000, 64, 1)
    remote = lite.ensure("ties_global", bits, labels)
    remote_local = lite.ensure("ties_local", local_bits, labels)
    exact, exact_local = HammingIndex(bits), HammingIndex(local_bits)
    rng = np.random.default_rng(2)
    queries = rng.integers(0, 2, (6, 16), dtype=np.uint8)
    for k in (1, 10, 500, 3000, 3500):
        for got, want in zip(remote.search(queries, k), exact.search(queries, k), strict=True):
            np.testing.assert_array_equal(got, want)
    selected = np.stack([rng.choice(64, 8, replace=False) for _ in range(6)])
    query_local = rng.integers(0, 2, (6, 64), dtype=np.uint8)
    for got, want in zip(
        hierarchical_search(remote, remote_local, queries, query_local, selected, 400),
        hierarchical_search(exact, exact_local, queries, query_local, selected, 400),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    assert remote.labels([0, 7]) == [np.flatnonzero(labels[i]).tolist() for i in (0, 7)]
    np.testing.assert_array_equal(remote.fetch(np.array([5, 2, 5])), bits[[5, 2, 5]])


def test_an_interrupted_build_resumes_and_a_complete_one_is_skipped(lite, monkeypatch):
    bits, labels = _codes(2300, 32, 3)
    monkeypatch.setattr(milvus, "INSERT_BATCH", 500)

    class Interrupted(Exception):
        pass

    def stop_after_two_batches(done, total):
        if done >= 1000:
            raise Interrupted

    with pytest.raises(Interrupted):
        lite.ensure("resumed", bits, labels, progress=stop_after_two_batches)
    assert lite.count("resumed") == 1000  # half-built
    written = []
    index = lite.ensure("resumed", bits, labels, progress=lambda done, total: written.append(done))
    assert written == [1500, 2000, 2300]  # from the first missing batch, not from the start
    assert lite.count("resumed") == 2300  # upsert: no id twice
    for got, want in zip(index.search(bits[:4], 50), HammingIndex(bits).search(bits[:4], 50), strict=True):
        np.testing.assert_array_equal(got, want)
    written.clear()
    lite.ensure("resumed", bits, labels, progress=lambda done, total: written.append(done))
    assert written == []


def test_bad_input_is_refused_before_milvus_sees_it(lite):
    with pytest.raises(ValueError, match="multiple of 8"):
        lite.ensure("odd", np.zeros((3, 12), np.uint8), np.zeros((3, 10), np.uint8))
    index = lite.ensure("small", *_codes(40, 16, 4))
    with pytest.raises(ValueError, match="query_bits"):
        index.search(np.zeros((1, 15), np.uint8), 3)
    with pytest.raises(ValueError, match="candidate ids"):
        index.distances(np.zeros((1, 16), np.uint8), candidates=np.array([[3, 40]]))


# ----------------------------------------------------------------- the app's gallery on milvus-lite


@pytest.fixture(scope="module")
def engines(tmp_path_factory, engine):
    uri = str(tmp_path_factory.mktemp("milvus-app") / "app.db")
    return engine, Engine.load(milvus_uri=uri), uri


def _same_search(a, b):
    for row in ("coarse", "reranked"):
        for field in ("ids", "distances"):
            np.testing.assert_array_equal(getattr(getattr(a, row), field), getattr(getattr(b, row), field))


def test_engine_on_milvus_lite_answers_as_in_process(engines):
    local, remote, _ = engines
    assert remote.global_index.name.startswith("hashdemo_hier_global_")
    images = [image for image, _ in list(local.examples.values())[:4]]
    for image in images[:3]:
        theta, top_l, n_coarse = local.defaults["theta"], local.defaults["L"], local.defaults["K"]
        _same_search(
            local.search(image, theta, top_l, n_coarse), remote.search(image, theta, top_l, n_coarse)
        )
    for operator, then in (("union", None), ("intersection", None), ("difference", "union")):
        image_c = images[3] if then else None
        got = remote.compose(images[0], images[1], operator, k=20, image_c=image_c, then=then)
        want = local.compose(images[0], images[1], operator, k=20, image_c=image_c, then=then)
        for row in ("composed", "bitwise"):
            for field in ("ids", "distances"):
                np.testing.assert_array_equal(
                    getattr(getattr(got, row), field), getattr(getattr(want, row), field)
                )


def test_query_command_on_milvus_prints_the_same_json(engines, tmp_path, monkeypatch, capsys):
    local, _, uri = engines
    from PIL import Image

    paths = []
    for i, (image, _) in enumerate(list(local.examples.values())[:2]):
        Image.fromarray(image).save(tmp_path / f"q{i}.png")
        paths.append(str(tmp_path / f"q{i}.png"))
    commands = (["search", paths[0], "--top", "20"], ["compose", *paths, "union", "--top", "20"])
    outputs = {}
    for where in ("in process", "milvus"):
        if where == "milvus":
            monkeypatch.setenv("HASHDEMO_MILVUS_URI", uri)
        outputs[where] = []
        for command in commands:
            assert query_main(command) == 0
            outputs[where].append(json.loads(capsys.readouterr().out))
    assert outputs["milvus"] == outputs["in process"]


def _app_env(**extra):
    return {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **extra}


def test_unreachable_milvus_at_start_gives_one_line():
    uri = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=_app_env(HASHDEMO_MILVUS_URI=uri),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert uri in last and "unset HASHDEMO_MILVUS_URI" in last
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------- a real Milvus standalone server

OUTAGE_TEST = "test_app_on_a_milvus_server_answers_as_in_process_and_survives_an_outage"


def crash(server: StandaloneServer) -> None:
    """SIGKILL the server and what it started, then reap them with `stop` (which sends SIGTERM and waits
    8 s for an exit Milvus 2.3 does not make in that time, then kills anyway)."""
    if server.pid is not None:
        for pid in [server.pid, *server._children()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    server.stop()


class MilvusApp:
    """A Milvus standalone server and `python app.py` on it, started in a thread. The app's first start
    builds its three collections, ~35 s that are mostly Milvus's own waits (create, flush, load), so the
    module starts both at once and its other tests run meanwhile; `ready()` waits for them."""

    def __init__(self, base: Path, log: Path) -> None:
        self.server, self.log = StandaloneServer(base), log
        self.app = ServedApp({"HASHDEMO_MILVUS_URI": self.server.uri}, log=log)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="milvus-app", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        try:
            self.server.start()
            self.app.start()
        except BaseException as error:  # noqa: BLE001 - raised again by ready(), in the test
            self.error = error

    def ready(self) -> "MilvusApp":
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self


@pytest.fixture(scope="module", autouse=True)
def milvus_app(request, tmp_path_factory):
    """Started with the module's first test, when the outage test is among those selected."""
    if not any(item.name == OUTAGE_TEST for item in request.session.items):
        yield None
        return
    base = tmp_path_factory.mktemp("milvus-standalone")
    started = MilvusApp(base, tmp_path_factory.mktemp("milvus-app") / "app.log")
    yield started
    started.thread.join()
    started.app.stop()
    crash(started.server)
    started.server.remove()
    assert not base.exists()


def _outputs(names, values):
    return {name: plain_answer(value) for name, value in zip(names, values, strict=True)}


def test_app_on_a_milvus_server_answers_as_in_process_and_survives_an_outage(served, milvus_app):
    app, url = served
    examples = sorted(str(p) for p in app.EXAMPLES_DIR.glob("query-*.png"))
    local = Client(url, verbose=False)
    server, served_app = milvus_app.ready().server, milvus_app.app
    remote = Client(served_app.url, verbose=False)

    def search(client, image):
        out = client.predict(handle_file(image), 0.4, 32, 1000, api_name="/search")
        return _outputs(SEARCH_OUTPUTS, out)

    def compose(client, a, b, operator):
        return _outputs(
            COMPOSE_OUTPUTS, client.predict(handle_file(a), handle_file(b), operator, api_name="/compose")
        )

    for image in examples[:2]:
        assert search(remote, image) == search(local, image)
    assert compose(remote, examples[2], examples[3], "intersection") == compose(
        local, examples[2], examples[3], "intersection"
    )
    crash(server)  # Milvus lost mid-run: the request gets a sentence, the app stays up
    began = time.monotonic()
    with pytest.raises(Exception, match="Milvus gallery at .* did not answer"):
        search(remote, examples[0])
    assert time.monotonic() - began < 60
    assert served_app.proc.poll() is None
    server.start()  # ... and answers again when Milvus is back
    deadline = time.monotonic() + 120
    while True:
        try:
            assert search(remote, examples[1]) == search(local, examples[1])
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    assert "Traceback" not in milvus_app.log.read_text()
