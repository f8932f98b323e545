import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalsuite.registry import RUNNERS, Registry, RegistryError


def test_register_and_get():
    reg: Registry = Registry("widget", "evalsuite.test-widgets")

    @reg.register("alpha")
    class Alpha:
        pass

    assert reg.get("alpha") is Alpha
    assert "alpha" in reg and reg.names() == ["alpha"]
    assert reg.origin("alpha") == "evalsuite"


def test_unknown_name_suggests_close_match():
    reg: Registry = Registry("widget", "evalsuite.test-widgets")
    reg.add("flux-dev-turbo8", object())
    reg.add("flux-dev", object())
    with pytest.raises(RegistryError) as err:
        reg.get("flux-dve")
    msg = str(err.value)
    assert "unknown widget 'flux-dve'" in msg
    assert "Did you mean 'flux-dev'" in msg


def test_duplicate_registration_is_refused():
    reg: Registry = Registry("widget", "evalsuite.test-widgets")
    reg.add("x", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("x", 2, origin="plugin")


def test_builtin_runner_registered():
    assert "flux-t2i" in RUNNERS


PLUGIN = '''
from dataclasses import dataclass
from PIL import Image
from evalsuite.runners.base import GenerationOutput, Runner, RunnerParams


@dataclass
class SolidParams(RunnerParams):
    colour: int = 200


class SolidRunner(Runner):
    """A plugin runner painting every image one grey level."""

    Params = SolidParams

    def load(self):
        self.pipe = "loaded"

    def generate(self, cases, seeds):
        w, h = self.size
        return [GenerationOutput(Image.new("RGB", (w, h), (self.params.colour,) * 3), phases={"denoise": 0.001})
                for _ in cases]
'''


def test_entry_point_plugin_runs_through_cli(tmp_path: Path, tiny_dataset: Path):
    site = tmp_path / "site"
    pkg = site / "evalsuite_solid"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "evalsuite_solid-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalsuite-solid\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evalsuite.runners]\nsolid = evalsuite_solid:SolidRunner\n")
    env = {"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalsuite",
            "run",
            "--configs",
            "solid",
            "--dataset",
            str(tiny_dataset),
            "--out",
            str(out),
            "--set",
            "solid.colour=17",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    import pandas as pd
    from PIL import Image

    run_dir = next(out.iterdir())
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert list(df["status"]) == ["ok"] * 3
    img = Image.open(run_dir / df["image"][0])
    assert img.getpixel((0, 0)) == (17, 17, 17)
    listing = subprocess.run(
        [sys.executable, "-m", "evalsuite", "runners", "solid"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "colour: 200" in listing.stdout
