"""pytest-benchmark: CPU cost of the pixel metrics and the small random feature networks at 256²
(``make benchmark``). The GPU figure comes from ``benchmarks/gpu_metrics.py``."""

import pytest
import torch

from evalsuite.metrics import functional as fn
from evalsuite.metrics.base import MetricBatch
from evalsuite.registry import METRICS


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(4, 3, 256, 256, generator=g)
    mask = torch.zeros(4, 1, 256, 256)
    mask[:, :, 64:192, 64:192] = 1
    img = (src + mask * (torch.rand(src.shape, generator=g) - 0.5)).clamp(0, 1)
    return MetricBatch(
        rows=[{}] * 4, images=img, prompts=["a mug on a table"] * 4, sources=src, masks=mask, pairs=src
    )


@pytest.mark.parametrize("func", ["masked_mse_per_image", "masked_psnr_per_image", "masked_ssim_per_image"])
def test_bench_pixel_metric(benchmark, batch, func):
    f = getattr(fn, func)
    benchmark(f, batch.images, batch.sources, 1 - batch.masks)


@pytest.mark.parametrize("name", ["fid", "clip_score", "unmasked_lpips", "lpips_pair"])
def test_bench_metric_update_random_nets(benchmark, batch, name):
    m = METRICS.get(name)(metric_weights="random")
    m.update(batch)  # build the network outside the timing
    benchmark(m.update, batch)


@pytest.mark.parametrize("mode", ["clean", "legacy_pytorch", "legacy_tensorflow"])
def test_bench_fid_preprocessing(benchmark, batch, mode):
    """The FID modes' resize to 299² (clean: PIL bicubic per float channel, on the CPU)."""
    from evalsuite.metrics.features import fid_input

    benchmark(fid_input, batch.images, mode, 299)
