"""`wsd-llm serve` refuses a busy port at once, in one line, before loading any model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_serve_on_a_busy_port_fails_at_once_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-m", "wsd_llm.cli", "serve", "--port", str(port)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1
    assert done.stderr.strip() == (f"cannot serve on 127.0.0.1:{port}: Address already in use; "
                                   "choose another --port or --host")
    assert "serving" not in done.stdout + done.stderr and "Loading models" not in done.stderr
