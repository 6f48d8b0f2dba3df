"""A kernel the smoke test runs in, on a real Jupyter server: a server answers a kernel's
websocket only once the new kernel answers it, which on a loaded node takes as long as the
kernel's imports. The whole of the check's kernel timeout is the kernel's to take."""

import json
import subprocess
import sys
import time

import pytest
import requests
from conftest import free_port
from tornado.httpclient import HTTPRequest

from tess_platform.kernels import Kernel

TOKEN = "kernel-test-token"
SLOW_START_S = 3  # the kernel's start, longer than the websocket's library default below


@pytest.fixture
def slow_kernel_server(tmp_path):
    """A Jupyter server whose default kernel sleeps before it starts (a kernel importing the
    science stack on a loaded node); its URL."""
    spec = tmp_path / "share" / "jupyter" / "kernels" / "slow"
    spec.mkdir(parents=True)
    argv = ["sh", "-c", f'sleep {SLOW_START_S} && exec "$0" -m ipykernel_launcher -f "$1"']
    (spec / "kernel.json").write_text(
        json.dumps({"argv": [*argv, sys.executable, "{connection_file}"], "language": "python"})
    )
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "JUPYTER_PATH": str(tmp_path / "share" / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={tmp_path}",
            "--MultiKernelManager.default_kernel_name=slow",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the Jupyter server exited"
            assert time.monotonic() < deadline, "the Jupyter server did not answer"
            try:
                if requests.get(f"{url}api/status", timeout=5).status_code in (200, 403):
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_kernel_slower_to_answer_than_the_websocket_default_runs_its_code(
    slow_kernel_server, monkeypatch
):
    """Tornado gives a websocket 20 s to open unless told otherwise; here its default is made
    shorter than the kernel's start, so that a client leaning on it fails as it did in CI
    ("the kernel's websocket did not open: Timeout during request")."""
    monkeypatch.setitem(HTTPRequest._DEFAULTS, "connect_timeout", SLOW_START_S / 3)
    monkeypatch.setitem(HTTPRequest._DEFAULTS, "request_timeout", SLOW_START_S / 3)
    kernel = Kernel.start(slow_kernel_server, TOKEN, timeout=30)
    run = kernel.execute("print(6 * 7)", timeout=60)
    assert (run.output, run.error) == ("42\n", None)
