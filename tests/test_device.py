"""The one ``--device`` resolver (:mod:`evalsuite.device`) that run, score, the sweeps, the pytest
plugin and multi-process runs share."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from evalsuite.device import DeviceError, accepted_devices, check_device, resolve_device
from evalsuite.errors import UsageError, exit_code_of


@pytest.mark.parametrize("value", [None, "auto", "cpu", "CPU", " auto ", torch.device("cpu")])
def test_accepted_everywhere(value):
    check_device(value)


@pytest.mark.parametrize(
    "value, message",
    [
        ("tpu", "--device 'tpu': evalsuite accepts auto, cpu, cuda, cuda:N"),
        ("cuda:x", "--device 'cuda:x': evalsuite accepts auto, cpu, cuda, cuda:N"),
        ("cpu:0", "--device 'cpu:0': evalsuite accepts auto, cpu, cuda, cuda:N"),
    ],
)
def test_unknown_devices_are_a_usage_error_naming_what_is_accepted(value, message):
    with pytest.raises(DeviceError) as info:
        check_device(value)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)
    assert exit_code_of(info.value) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_refused(value):
    with pytest.raises(DeviceError, match=f"^--device {value}: CUDA is not available on this machine"):
        resolve_device(value, "hub")


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto is the CPU only where there is no CUDA")
@pytest.mark.parametrize("policy", [None, "tiny", "random", "hub"])
def test_auto_is_the_cpu_without_cuda(policy):
    assert resolve_device("auto", policy) == torch.device("cpu")
    assert resolve_device(None, policy, local_rank=1) == torch.device("cpu")


def test_the_option_name_is_the_callers():
    with pytest.raises(DeviceError, match="^--evalsuite-device 'tpu': evalsuite accepts"):
        check_device("tpu", "--evalsuite-device")
    with pytest.raises(DeviceError, match="^--evalsuite-device 'tpu': evalsuite accepts"):
        resolve_device("tpu", "tiny", option="--evalsuite-device")


def test_an_explicit_device_is_kept():
    assert resolve_device("cpu", "hub") == torch.device("cpu")
    assert resolve_device(torch.device("cpu"), "tiny", local_rank=0) == torch.device("cpu")
    assert "auto" in accepted_devices() and "cuda:N" in accepted_devices()


class _FakeCuda:
    """Two CUDA devices, for the rules that only apply on a CUDA host (this test machine has none)."""

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 2


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", _FakeCuda.is_available)
    monkeypatch.setattr(torch.cuda, "device_count", _FakeCuda.device_count)


def test_auto_on_a_cuda_host(two_gpus):
    assert resolve_device("auto", "hub") == torch.device("cuda")
    assert resolve_device("auto", "random") == torch.device("cuda")
    assert resolve_device("auto", None) == torch.device("cuda")  # score: feature networks
    assert resolve_device("auto", "tiny") == torch.device("cpu")  # tiny models are faster on the CPU


def test_a_multi_process_launch_takes_its_local_rank(two_gpus):
    assert resolve_device("auto", "hub", local_rank=1) == torch.device("cuda:1")
    assert resolve_device("cuda", "tiny", local_rank=1) == torch.device("cuda:1")
    assert resolve_device("cuda:0", "hub", local_rank=1) == torch.device("cuda:0")  # asked for explicitly
    assert resolve_device("cpu", "hub", local_rank=1) == torch.device("cpu")


def test_an_index_past_the_last_gpu_is_refused(two_gpus):
    assert resolve_device("cuda:1", "hub") == torch.device("cuda:1")
    with pytest.raises(
        DeviceError, match=r"^--device cuda:2: this machine has 2 CUDA device\(s\) \(cuda:0..cuda:1\)"
    ):
        resolve_device("cuda:2", "hub")


def test_the_module_is_light():
    code = "import sys, evalsuite.device; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
