import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalsuite.registry import BUILTIN_METRICS, BUILTIN_RUNNERS, METRICS, RUNNERS, Registry, RegistryError


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


def test_builtin_tables_match_the_decorators():
    """Every lazy built-in resolves to the class its module registers by decorator, under that name."""
    from evalsuite.metrics.base import Metric
    from evalsuite.runners.base import Runner

    for reg, table, base in ((RUNNERS, BUILTIN_RUNNERS, Runner), (METRICS, BUILTIN_METRICS, Metric)):
        for name, module in table.items():
            obj = reg.get(name)
            assert issubclass(obj, base) and obj.__module__ == module, name
        # importing the modules registered nothing that the table does not list
        assert set(table) <= set(reg.names())
        assert {n for n in reg.names() if reg.origin(n) == "evalsuite"} == set(table)


def test_lazy_entry_is_imported_on_get_only(tmp_path: Path, monkeypatch):
    (tmp_path / "lazy_widget_mod.py").write_text("class Widget:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("widget", "evalsuite.test-widgets")
    reg.add_lazy("w", "lazy_widget_mod:Widget")
    assert reg.names() == ["w"] and "lazy_widget_mod" not in sys.modules
    assert reg.get("w").__name__ == "Widget" and "lazy_widget_mod" in sys.modules
    reg.add_lazy("broken", "lazy_widget_mod:Nope")
    with pytest.raises(
        RegistryError, match=r"widget 'broken' .*could not be loaded from lazy_widget_mod:Nope"
    ):
        reg.get("broken")
    with pytest.raises(RegistryError, match="already registered"):
        reg.add_lazy("w", "lazy_widget_mod:Widget", origin="plugin")


def test_wrong_base_class_is_refused_with_a_clear_message():
    class NotARunner:
        pass

    reg: Registry = Registry("runner", "evalsuite.test-runners", base="evalsuite.runners.base:Runner")
    with pytest.raises(RegistryError) as err:
        reg.add("bad", NotARunner, origin="plugin x")
    msg = str(err.value)
    assert "runner 'bad' from plugin x is class" in msg and "NotARunner" in msg
    assert "not a subclass of evalsuite.runners.base.Runner" in msg
    assert "bad" not in reg
    with pytest.raises(RegistryError, match="not a subclass of evalsuite.metrics.base.Metric"):
        METRICS.add("not-a-metric", NotARunner, origin="tests")
    with pytest.raises(RegistryError, match="not a callable"):
        Registry("dataset", "evalsuite.test-ds", require_callable=True).add("d", 3)


def test_wrong_base_class_from_an_entry_point_is_refused_on_use(tmp_path: Path):
    site = tmp_path / "site"
    (site / "evalsuite_bad").mkdir(parents=True)
    (site / "evalsuite_bad" / "__init__.py").write_text("class Oops:\n    pass\n")
    dist = site / "evalsuite_bad-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalsuite-bad\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evalsuite.runners]\noops = evalsuite_bad:Oops\n")
    code = (
        "from evalsuite.registry import RUNNERS, RegistryError\n"
        "assert 'oops' in RUNNERS.names()\n"
        "try:\n    RUNNERS.get('oops')\nexcept RegistryError as e:\n    print(e)\n"
    )
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1])]),
        "PATH": "/usr/bin:/bin",
    }
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "runner 'oops' from entry point evalsuite_bad:Oops (evalsuite-bad)" in res.stdout
    assert "not a subclass of evalsuite.runners.base.Runner" in res.stdout


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

    run_dir = next(p for p in out.iterdir() if p.is_dir())
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
