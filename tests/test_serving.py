"""Where the app listens: hashdemo's variables, then Gradio's (Spaces, Docker), then loopback:7860."""

import pytest

from hashdemo.app.serving import listen_settings


def test_defaults_to_loopback_7860():
    assert listen_settings({}) == {"server_name": "127.0.0.1", "server_port": 7860}


def test_gradio_variables_are_honoured_and_ours_win():
    spaces = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}
    assert listen_settings(spaces) == {"server_name": "0.0.0.0", "server_port": 7861}
    ours = {**spaces, "HASHDEMO_HOST": "127.0.0.2", "HASHDEMO_PORT": "8000"}
    assert listen_settings(ours) == {"server_name": "127.0.0.2", "server_port": 8000}


@pytest.mark.parametrize("port", ["abc", "0", "70000", "-1", "80.5"])
def test_a_bad_port_is_a_sentence(port):
    with pytest.raises(ValueError, match="port must be a number from 1 to 65535"):
        listen_settings({"GRADIO_SERVER_PORT": port})
