import numpy as np
import pytest
from PIL import Image

from evalsuite.data.masks import COVERAGE_LEVELS, FAMILIES, make_mask, save_mask_png


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_is_deterministic_and_seed_dependent(family):
    a = make_mask(family, 96, 64, seed=7)
    b = make_mask(family, 96, 64, seed=7)
    assert a.dtype == bool and a.shape == (64, 96)
    assert np.array_equal(a, b)
    assert a.any() and not a.all()
    others = [make_mask(family, 96, 64, seed=s) for s in range(8, 12)]
    assert any(not np.array_equal(a, o) for o in others)


@pytest.mark.parametrize("percent", COVERAGE_LEVELS)
def test_coverage_sweep_hits_its_target(percent):
    for seed in range(5):
        m = make_mask(f"coverage-{percent}", 200, 120, seed)
        assert abs(m.mean() - percent / 100) < 0.01


def test_brush_widths_are_ordered():
    def mean_cov(fam):
        return np.mean([make_mask(fam, 128, 128, s).mean() for s in range(30)])

    thin, medium, thick = mean_cov("brush-thin"), mean_cov("brush-medium"), mean_cov("brush-thick")
    assert thin < medium < thick


def test_outpaint_keeps_the_centre():
    for seed in range(5):
        m = make_mask("outpaint", 100, 80, seed)
        assert not m[40, 50] and m[0, 0] and m[-1, -1] and m[0, -1] and m[-1, 0]
        assert 0.3 < m.mean() < 0.8


def test_unknown_family_and_tiny_size():
    with pytest.raises(KeyError, match="unknown mask family 'brush'.*brush-thin"):
        make_mask("brush", 32, 32, 0)
    with pytest.raises(ValueError, match="at least 8x8"):
        make_mask("rectangle", 4, 32, 0)


def test_saved_as_1bit_png_roundtrip(tmp_path):
    m = make_mask("object", 64, 48, 3)
    p = tmp_path / "m.png"
    save_mask_png(m, p)
    with Image.open(p) as im:
        assert im.mode == "1" and im.format == "PNG" and im.size == (64, 48)
        assert np.array_equal(np.asarray(im.convert("L")) >= 128, m)
    first = p.read_bytes()
    save_mask_png(m, p)
    assert p.read_bytes() == first
