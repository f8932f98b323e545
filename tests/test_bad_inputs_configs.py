"""The bad-input corpus, continued: configuration files, configuration and dataset folders, dataset
loader options and plugins that fail at import (found by an independent try of main; each case is
the behaviour a user must get). Everything here is refused before a model is built, so the cases run
in the test process through ``evalsuite.cli.main.main`` except where a fresh interpreter is the
point (a plugin's entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.registry import Registry, RegistryError
from tests.test_cli import cli

REPO = Path(__file__).resolve().parent.parent

GOOD = "name: {name}\nrunner: flux-t2i\ndescription: a test configuration\nparams:\n  steps: 2\n"
BOMB = (
    "name: bomb\nrunner: flux-t2i\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else 'lol'}]\n" for i in range(9))
    + "description: *a8\nparams: {}\n"
)

# name → (files of the --config-dir: name → text, extra arguments, exit code, fragments of stderr)
CONFIG_CASES: dict[str, tuple[dict[str, str], list[str], int, list[str]]] = {
    "name-escapes-the-run-dir": (
        {"evil.yaml": GOOD.format(name="../../evil")},
        ["--configs", "../../evil"],
        2,
        ["evil.yaml: configuration name '../../evil' is not a name", "no path separators"],
    ),
    "name-is-dot-dot": (
        {"dots.yaml": GOOD.format(name="..")},
        ["--configs", "flux-dev"],
        2,
        ["dots.yaml: configuration name '..' is not a name"],
    ),
    "yaml-alias-bomb": (
        {"bomb.yaml": BOMB},
        ["--configs", "bomb"],
        2,
        ["bomb.yaml: its YAML aliases expand to more than 10,000 nodes"],
    ),
    "unknown-top-level-key": (
        {"typo.yaml": "name: typo\nrunner: flux-t2i\nparms:\n  steps: 2\n"},
        ["--configs", "typo"],
        2,
        ["typo.yaml: unknown key(s) 'parms' (did you mean 'params'?)"],
    ),
    "description-too-long": (
        {"long.yaml": "name: long\nrunner: flux-t2i\ndescription: " + "x" * 5000 + "\nparams: {}\n"},
        ["--configs", "long"],
        2,
        ["long.yaml: description is 5,000 characters; at most 1,000"],
    ),
    "description-not-text": (
        {"d.yaml": "name: d\nrunner: flux-t2i\ndescription: [1, 2]\nparams: {}\n"},
        ["--configs", "d"],
        2,
        ["d.yaml: description must be text, not list"],
    ),
    "params-not-a-mapping": (
        {"p.yaml": "name: p\nrunner: flux-t2i\nparams: [steps, 2]\n"},
        ["--configs", "p"],
        2,
        ["p.yaml: params must be a mapping"],
    ),
}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_bad_configuration_file_is_refused_before_generating(name: str, tmp_path: Path):
    files, extra, code, fragments = CONFIG_CASES[name]
    cdir = tmp_path / "configs"
    cdir.mkdir()
    for fname, text in files.items():
        (cdir / fname).write_text(text, encoding="utf-8")
    out = tmp_path / "a" / "b"
    res = cli("run", *extra, "--config-dir", str(cdir), "--weights", "tiny", "--out", str(out), cwd=tmp_path)
    assert res.returncode == code, res.stderr
    for frag in fragments:
        assert frag in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists() and not (tmp_path / "evil").exists()
    # `evalsuite runners` answers at once with the same refusal, not with a 400 MB listing
    listed = cli("runners", "--config-dir", str(cdir), cwd=tmp_path)
    assert listed.returncode == 2 and fragments[0] in listed.stderr


def test_yml_files_are_read_like_yaml(tmp_path: Path):
    cdir = tmp_path / "configs"
    cdir.mkdir()
    (cdir / "short.yml").write_text(GOOD.format(name="short"), encoding="utf-8")
    res = cli("runners", "short", "--config-dir", str(cdir), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "short.yml" in res.stdout and "steps: 2" in res.stdout


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_config_dir_that_is_not_a_folder_is_refused(kind: str, tmp_path: Path):
    path = tmp_path / "x.yaml"
    if kind == "file":
        path.write_text(GOOD.format(name="x"), encoding="utf-8")
    res = cli("runners", "--config-dir", str(path), cwd=tmp_path)
    assert res.returncode == 2
    want = "is a file, not a folder; pass the folder that holds it" if kind == "file" else "no such folder"
    assert f"--config-dir {path}: {want}" in res.stderr


@pytest.mark.parametrize("var", ["EVALSUITE_CONFIG_DIRS", "EVALSUITE_DATASETS"])
def test_missing_folder_in_a_search_path_variable_is_named(var: str, tmp_path: Path, monkeypatch, caplog):
    from evalsuite import paths

    monkeypatch.setattr(paths, "_WARNED_FOLDERS", set())
    gone = tmp_path / "gone"
    monkeypatch.setenv(var, str(gone))
    caplog.set_level("WARNING")
    if var == "EVALSUITE_CONFIG_DIRS":
        res = cli("run", "--configs", "mine", "--weights", "tiny", "--out", str(tmp_path / "o"), cwd=tmp_path)
    else:
        res = cli(
            "run", "--configs", "flux-dev", "--dataset", "mine", "--out", str(tmp_path / "o"), cwd=tmp_path
        )
    assert res.returncode == 2
    assert f"{var}: {gone} is not a folder" in caplog.text + res.stderr


# name → (--dataset value built from the tmp folder, fragments of stderr)
LOADER_CASES: dict[str, tuple[str, list[str]]] = {
    "coco-unknown-option": (
        "coco2014:{tmp}/ok.json?bogus=1",
        ["the coco2014 loader has no option 'bogus'; its options: ids, images, limit"],
    ),
    "folder-unknown-option": (
        "folder:{tmp}/imgs?mask_key=x",
        ["the folder loader has no option 'mask_key'; its options: name"],
    ),
    "csv-unknown-option": ("csv:{tmp}/x.csv?x=1", ["the csv loader has no option 'x'; its options: name"]),
    "csv-is-a-folder": ("csv:{tmp}/imgs", ["csv: {tmp}/imgs is a folder; pass a CSV file of cases"]),
    "folder-is-a-file": ("folder:{tmp}/x.csv", ["folder: {tmp}/x.csv is a file, not a folder"]),
    "limit-not-a-number": (
        "csv:{tmp}/x.csv?limit=ten",
        ["dataset option limit='ten'", "expected a whole number"],
    ),
    "option-without-value": ("csv:{tmp}/x.csv?limit", ["dataset option 'limit'", "must be key=value"]),
    "https-url": ("https://example.org/manifest.jsonl", ["URLs are not supported"]),
}


@pytest.mark.parametrize("name", list(LOADER_CASES))
def test_unusable_dataset_loader_argument_is_one_line(name: str, tmp_path: Path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "ok.json").write_text('{"images": [], "annotations": []}', encoding="utf-8")
    (tmp_path / "x.csv").write_text("image,mask,prompt\n", encoding="utf-8")
    spec, fragments = LOADER_CASES[name]
    spec = spec.format(tmp=tmp_path)
    res = cli("run", "--configs", "flux-dev", "--dataset", spec, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    for frag in fragments:
        assert frag.format(tmp=tmp_path) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "o").exists()


def test_a_plugin_that_exits_at_import_is_a_registry_error(tmp_path: Path, monkeypatch):
    (tmp_path / "exiting_plugin_mod.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry = Registry("widget", "evalsuite.test-widgets")
    reg.add_lazy("quits", "exiting_plugin_mod:Widget", origin="entry point exiting_plugin_mod:Widget")
    with pytest.raises(
        RegistryError, match=r"widget 'quits' \(entry point exiting_plugin_mod:Widget\) .*SystemExit"
    ):
        reg.get("quits")


def _site_with_exiting_plugin(root: Path) -> dict[str, str]:
    site = root / "site"
    (site / "evalsuite_quits").mkdir(parents=True)
    (site / "evalsuite_quits" / "__init__.py").write_text("import sys\nsys.exit(3)\n")
    dist = site / "evalsuite_quits-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalsuite-quits\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evalsuite.runners]\nquits = evalsuite_quits:Runner\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "HF_HUB_OFFLINE": "1"}


def test_a_broken_runner_plugin_neither_borrows_an_exit_code_nor_hides_the_list(tmp_path: Path):
    env = _site_with_exiting_plugin(tmp_path)
    evalsuite = [sys.executable, "-m", "evalsuite"]
    listed = subprocess.run([*evalsuite, "runners"], capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "flux-dev:" in listed.stdout and "flux-cn-beta-turbo8:" in listed.stdout  # the others still listed
    assert "quits" in listed.stdout and "evalsuite: warning: quits:" in listed.stderr
    assert (
        "entry point evalsuite_quits:Runner (evalsuite-quits)" in listed.stderr
        and "SystemExit: 3" in listed.stderr
    )
    run = subprocess.run(
        [*evalsuite, "run", "--configs", "quits", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr  # a usage error naming the plugin, never the "locked" code 3
    assert (
        "runner 'quits' (entry point evalsuite_quits:Runner (evalsuite-quits)) could not be loaded"
        in run.stderr
    )
    assert not (tmp_path / "o").exists()


# -- confusing messages of the same try, one group ------------------------------------------------
def _dataset(tmp_path: Path, image: str = "img/a.png", mask: str = "mask/a.png") -> Path:
    from tests.conftest import write_dataset

    return write_dataset(
        tmp_path / "ds", [{"id": "a", "prompt": "a red apple", "image": image, "mask": mask}]
    )


def _zero_one_mask(tmp_path: Path) -> tuple[Path, list[str]]:
    import numpy as np
    from PIL import Image

    ds = _dataset(tmp_path)
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 1  # a 0/1 array saved as 8-bit grey
    Image.fromarray(m).save(ds / "mask" / "a.png")
    return ds, ["the mask's levels are 0 and 1 (not 0 and 255); reading 1 as 'regenerate'"]


def _url_image(tmp_path: Path) -> tuple[Path, list[str]]:
    ds = _dataset(tmp_path)
    line = '{"id": "a", "prompt": "x", "image": "https://example.org/a.png", "mask": "mask/a.png"}\n'
    (ds / "manifest.jsonl").write_text(line)
    return ds, ["field 'image' = 'https://example.org/a.png' is a URL (https://); URLs are not supported"]


def _link_outside(tmp_path: Path) -> tuple[Path, list[str]]:
    ds = _dataset(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ds / "img" / "a.png").rename(outside / "a.png")
    (ds / "img" / "a.png").symlink_to(outside / "a.png")
    return ds, [
        "points outside the dataset folder",
        f"through the symbolic link {ds / 'img' / 'a.png'} → {outside / 'a.png'}",
    ]


# name → (builder of the dataset and the expected fragments, extra environment, exit code)
MESSAGES = {
    "mask-saved-as-0-1": (_zero_one_mask, {}, 0),
    "image-path-is-a-url": (_url_image, {}, 2),
    "symlink-leaves-the-dataset": (_link_outside, {}, 2),
}


@pytest.mark.parametrize("name", list(MESSAGES))
def test_confusing_input_gets_a_message_that_says_what_happened(name: str, tmp_path: Path, caplog):
    build, env, code = MESSAGES[name]
    ds, fragments = build(tmp_path)
    caplog.set_level("WARNING")
    res = cli(
        "run",
        "--configs",
        "flux-dev-inpaint",
        "--dataset",
        str(ds),
        "--weights",
        "tiny",
        "--set",
        "steps=1",
        "--metrics",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert res.returncode == code, res.stderr
    for frag in fragments:
        assert frag in res.stderr + caplog.text
    if name == "mask-saved-as-0-1":  # read, not skipped as an empty mask
        import pandas as pd

        rows = pd.concat(pd.read_parquet(p) for p in (tmp_path / "o").rglob("samples.parquet"))
        assert list(rows.status) == ["ok"]


def test_more_threads_than_cores_warns(monkeypatch, caplog):
    import torch

    from evalsuite.engine.lifecycle import THREADS_ENV, apply_thread_policy

    before = torch.get_num_threads()
    monkeypatch.setenv(THREADS_ENV, "1000")
    caplog.set_level("WARNING")
    try:
        apply_thread_policy(torch.device("cpu"), "tiny")
    finally:
        torch.set_num_threads(before)
    assert f"{THREADS_ENV}=1000 is more threads than the" in caplog.text and "use at most" in caplog.text


def test_metrics_take_commas_as_well_as_spaces():
    from evalsuite.cli.main import build_parser

    p = build_parser()
    assert p.parse_args(["run", "--metrics", "latency,clip_score", "fid"]).metrics == [
        "latency",
        "clip_score",
        "fid",
    ]
    assert p.parse_args(["run", "--metrics"]).metrics == []
    assert p.parse_args(["score", "R", "--metrics", "fid,kid"]).metrics == ["fid", "kid"]


def test_a_number_in_exponent_form_is_a_number(tmp_path: Path):
    # --set guidance=1e308 said "expected a number, got '1e308'" (YAML 1.1 reads 1e308 as text)
    res = cli("runners", "flux-dev", "--set", "guidance=1e308", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "guidance: 1.0e+308" in res.stdout
    assert cli("runners", "flux-dev", "--set", "guidance=lots", cwd=tmp_path).returncode == 2
