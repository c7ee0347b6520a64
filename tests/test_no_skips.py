"""The suite allows no skipped test: a skip, at collection or in a test, fails the session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_pytest(folder: Path, source: str) -> subprocess.CompletedProcess:
    (folder / "test_sample.py").write_text(source)
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no_skips",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(folder),
            str(folder / "test_sample.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=120,
    )


@pytest.mark.parametrize(
    "source",
    [
        "import pytest\ndef test_a():\n    pass\ndef test_b():\n    pytest.skip('no data here')\n",
        "import pytest\n@pytest.mark.skipif(True, reason='no GPU')\ndef test_a():\n    pass\n",
        "import pytest\npytest.skip('whole module', allow_module_level=True)\n",
        "import pytest\n@pytest.fixture\ndef data():\n    pytest.skip('missing')\ndef test_a(data):\n    pass\n",
    ],
    ids=["in a test", "marker", "module", "fixture"],
)
def test_a_skip_fails_the_session(tmp_path, source):
    result = run_pytest(tmp_path, source)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "skipped (this suite allows none)" in result.stdout


def test_a_session_without_skips_passes(tmp_path):
    source = "import pytest\ndef test_a():\n    pass\n@pytest.mark.xfail(strict=True)\ndef test_b():\n    assert 0\n"
    result = run_pytest(tmp_path, source)
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
