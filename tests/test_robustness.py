"""Issue 6: damaged files, what is served, concurrent users. Each test fails if its protection goes."""

import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from hashdemo.cli.bench import run_load
from hashdemo.model.checkpoints import MANIFEST, CheckpointError, load_checkpoint, sha256_of
from hashdemo.model.networks import Encoded
from hashdemo.retrieval.gallery_codes import load_codes, save_codes
from hashdemo.storage.locations import CHECKPOINT_DIR


@pytest.fixture
def checkpoints(tmp_path):
    """A private copy of the shipped checkpoints to damage."""
    shutil.copytree(CHECKPOINT_DIR, tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def _refresh_manifest(directory, name):
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest[name]["sha256"] = sha256_of(directory / name / "model.pt")
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_altered_checkpoint_is_refused_by_the_manifest(checkpoints):
    path = checkpoints / "hier" / "model.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError, match=r"hier/model.pt does not match the sha256.*python -m hashdemo train hier"
    ):
        load_checkpoint("hier", checkpoints)


def test_wrong_format_version_is_refused(checkpoints):
    path = checkpoints / "hier" / "model.pt"
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, "format": 0}, path)
    _refresh_manifest(checkpoints, "hier")
    with pytest.raises(CheckpointError, match=r"format 0, expected 1.*python -m hashdemo train hier"):
        load_checkpoint("hier", checkpoints)


class Payload:
    """Anything but plain data: weights_only loading must refuse to unpickle it."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoint_with_arbitrary_objects_is_not_unpickled(checkpoints, capsys):
    path = checkpoints / "hier" / "model.pt"
    torch.save({**torch.load(path, weights_only=True), "extra": Payload()}, path)
    _refresh_manifest(checkpoints, "hier")
    with pytest.raises(CheckpointError, match="unusable"):
        load_checkpoint("hier", checkpoints)
    assert "unpickled!" not in capsys.readouterr().out


def test_damaged_gallery_code_cache_is_rebuilt_not_trusted(tmp_path):
    rng = np.random.default_rng(0)
    codes = {
        name: Encoded(
            rng.integers(0, 2, (5, 8), dtype=np.uint8),
            rng.integers(0, 2, (5, 16), dtype=np.uint8),
            rng.random((5, 16), dtype=np.float32),
            rng.random((5, 10), dtype=np.float32),
        )
        for name in ("hier", "dcoh")
    }
    path = tmp_path / "codes.npz"
    save_codes(path, codes)
    assert not list(tmp_path.glob("*.tmp*"))  # written to a temporary name, then renamed
    np.testing.assert_array_equal(
        load_codes(path, ("hier", "dcoh"))[0]["dcoh"].global_bits, codes["dcoh"].global_bits
    )
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert load_codes(path, ("hier", "dcoh")) is None


def test_server_binds_loopback_without_a_share_link(served):
    app, url = served
    assert url.startswith("http://127.0.0.1:")
    assert app.demo.server_name == "127.0.0.1"
    assert app.demo.share is False or app.demo.share_url is None


@pytest.mark.parametrize(
    "target", ["/etc/passwd", "/work/../etc/passwd", "app.py", "hashdemo/service/engine.py"]
)
def test_files_outside_the_app_assets_are_refused(served, target):
    _, url = served
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{url}gradio_api/file={target}", timeout=10)
    assert error.value.code in (403, 404)


def test_uploads_over_the_limit_are_refused(served, tmp_path):
    _, url = served
    big = b"\x89PNG" + bytes(11 * 1024 * 1024)
    boundary = "hashdemo-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}gradio_api/upload",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 413


@pytest.mark.slow
def test_sixteen_concurrent_callers_all_get_their_solo_answers(served):
    app, url = served
    # one call each, on 5 examples: the 16 concurrent calls ask 10 different questions (search or
    # compose x 5 examples), against the 8 of 16 x 2 calls on 4 examples, in 26 calls instead of 40
    examples = sorted(str(p) for p in app.EXAMPLES_DIR.glob("query-*.png"))[:5]
    result = run_load(url, examples, callers=16, calls_each=1, timeout_s=240)
    assert result["errors"] == []
    assert result["ok"] == 16 and result["different"] == 0
