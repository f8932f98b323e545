"""Speed of the light commands: ``evalsuite --help`` and ``evalsuite runners`` in a fresh interpreter.

The unit test that they import neither torch, diffusers nor pandas is ``tests/test_cli_light.py``;
this benchmark records how long they take (interpreter start included) on the machine it runs on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("argv", [["--help"], ["runners"], ["datasets", "list"]], ids=" ".join)
def test_bench_light_command(benchmark, argv):
    def once() -> None:
        subprocess.run([sys.executable, "-m", "evalsuite", *argv], check=True, capture_output=True, env=ENV)

    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
