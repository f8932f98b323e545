import pytest

from evalsuite.config import configuration as cfg


def test_builtin_flux_dev_resolves_with_reference_settings():
    c = cfg.resolve("flux-dev")
    p = c.params
    assert (p.model, p.steps, p.guidance, p.width, p.height, p.max_sequence_length) == (
        "black-forest-labs/FLUX.1-dev",
        28,
        3.5,
        1024,
        1024,
        512,
    )
    assert c.runner == "flux-t2i" and c.source.endswith("flux-dev.yaml")


def test_override_with_and_without_prefix():
    c = cfg.resolve_many(
        ["flux-dev"], [cfg.Override.parse("flux-dev.steps=20"), cfg.Override.parse("guidance=2")]
    )[0]
    assert c.params.steps == 20 and c.params.guidance == 2.0
    assert "steps=20" in c.overrides


@pytest.mark.parametrize(
    "text, match",
    [
        ("flux-dev.stepz=3", r"unknown parameter 'stepz'. Did you mean 'steps'"),
        ("flux-dev.steps=abc", r"parameter 'steps': expected an integer"),
        ("flux-dev.steps=0", r"steps must be ≥ 1"),
        ("flux-dev.width=1000", r"multiple of 16"),
        ("nosuch.steps=3", r"configuration 'nosuch' is not among those selected"),
        ("nofield=3", r"no selected configuration has a parameter 'nofield'"),
    ],
)
def test_invalid_overrides(text, match):
    with pytest.raises(cfg.ConfigError, match=match):
        cfg.resolve_many(["flux-dev"], [cfg.Override.parse(text)])


def test_override_syntax_errors():
    with pytest.raises(cfg.ConfigError, match="expected \\[CONFIG.\\]FIELD=VALUE"):
        cfg.Override.parse("steps")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.Override.parse("steps=[1")


def test_unknown_configuration_suggests():
    with pytest.raises(cfg.ConfigError, match=r"unknown configuration 'flux-dve'. Did you mean 'flux-dev'"):
        cfg.resolve("flux-dve")


def test_yaml_config_dir(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: mine\nrunner: flux-t2i\nparams:\n  steps: 4\n")
    c = cfg.resolve("mine", extra_dirs=[tmp_path])
    assert c.params.steps == 4 and c.params.guidance == 3.5
    (tmp_path / "bad.yaml").write_text("runner: [\n")
    with pytest.raises(cfg.ConfigError, match="bad.yaml: not valid YAML"):
        cfg.discover([tmp_path])
