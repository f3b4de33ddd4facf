"""The drop channel's parser: a dropped URL only ever names a file under the app's own folders."""

import pytest

from hashdemo.app.ui import dropped_file


def test_a_served_file_under_a_root_is_accepted(tmp_path):
    picture = tmp_path / "pics" / "tile one.png"
    picture.parent.mkdir()
    picture.write_bytes(b"png")
    url = f"http://127.0.0.1:7860/gradio_api/file={str(picture).replace(' ', '%20')}"
    assert dropped_file(f"B|{url}|1732770000", [tmp_path / "pics"]) == ("B", str(picture.resolve()))


@pytest.mark.parametrize(
    "payload",
    [
        "C|http://127.0.0.1/gradio_api/file=/etc/hostname|1",  # no such slot
        "A|http://example.org/picture.png|1",  # not a file the app serves
        "A|http://127.0.0.1/gradio_api/file=/etc/hostname|1",  # outside the roots
        "A|http://127.0.0.1/gradio_api/file={root}/../../etc/hostname|1",  # escapes a root
        "A|http://127.0.0.1/gradio_api/file={root}/missing.png|1",  # not there
        "",
    ],
)
def test_anything_else_is_refused_with_a_sentence(tmp_path, payload):
    with pytest.raises(ValueError, match="can be dropped on a slot"):
        dropped_file(payload.format(root=tmp_path), [tmp_path])
