"""The edge runtime must import without torch or transformers."""

import subprocess
import sys


def test_edge_runtime_imports_without_torch():
    code = ("import sys, edge_runtime, edge_runtime.engine, edge_runtime.daemon, edge_runtime.server, edge_runtime.cli; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
