# evalsuite — the two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Python caches compiled bytecode in __pycache__ (inside .venv and the checkout, both ignored by
# git). Without it — PYTHONDONTWRITEBYTECODE=1 in the environment, packages installed with
# --no-compile — every Python process recompiles the sources of torch, diffusers and torchmetrics
# it imports: about 40 s instead of 14 s per process on a 2-core machine, paid by every child
# process the tests start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-cpu-levels venv lint typecheck unit benchmark clean

# The environment: exactly the versions of constraints.txt, with --no-deps (no dependency
# resolution, which alone took 48 s on the 2-core development machine), in two pip processes at
# once: the CUDA torch stack (~5 GB to unpack) and everything else, evalsuite itself (editable) in
# a third; then `pip check` proves the set complete and consistent. --no-compile: bytecode is written on first import instead, for the modules
# a command actually uses.
PIP_INSTALL := $(BIN)/python -m pip install -q --no-deps --no-compile
TORCH_STACK := ^(torch|torchvision|triton|cuda-[a-z-]+|nvidia-(cu|nv|nccl)[a-z0-9-]*)==
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	grep -E '$(TORCH_STACK)' constraints.txt > $(VENV)/torch-stack.txt
	grep -vE '$(TORCH_STACK)' constraints.txt > $(VENV)/the-rest.txt
	$(PIP_INSTALL) -r $(VENV)/torch-stack.txt & a=$$!; \
	$(PIP_INSTALL) -r $(VENV)/the-rest.txt & b=$$!; \
	$(PIP_INSTALL) -e . & c=$$!; \
	wait $$a; ra=$$?; wait $$b; rb=$$?; wait $$c; rc=$$?; test $$ra$$rb$$rc = 000
	$(BIN)/python -m pip check || { echo "constraints.txt does not match pyproject.toml: regenerate it (its header says how)"; exit 1; }
	touch $(STAMP)

# The preference-metric parity tests' reference code: hpsv2 / image-reward unpacked without their
# (conflicting) dependencies, off sys.path (tests/reference-code.txt says why).
$(DEV): $(STAMP) tests/reference-code.txt
	$(BIN)/python -m pip install -q --no-compile --no-deps --require-hashes --upgrade \
	  --target $(VENV)/reference-code -r tests/reference-code.txt
	touch $(DEV)

venv: $(DEV)

## make demo: install into .venv and run the embedded smoke suite (tiny weights, CPU)
demo: $(STAMP)
	$(BIN)/evalsuite run

## make test: lint, type-check and the test suite (what CI runs)
test: lint typecheck unit

## make lint: ruff check and ruff format --check (run `ruff format evalsuite tests benchmarks` to fix)
lint: $(DEV)
	$(BIN)/ruff check evalsuite tests benchmarks
	$(BIN)/ruff format --check evalsuite tests benchmarks

typecheck: $(DEV)
	$(BIN)/mypy evalsuite

# Two pytest workers (pytest-xdist): single-threaded tiny models, so two workers use both cores of a
# 2-core machine. Whole test modules go to one worker (their shared tiny runs and pipelines are built
# once), the slowest first (tests/conftest.py orders them). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
unit: $(DEV)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# torch picks its CPU kernels by instruction set (AVX-512, AVX2, default), and a test that compares
# generated numbers bitwise can hold on one and fail on another. This runs the tests marked `numerics`
# (tests/conftest.py says which) once more under a second dispatch level: AVX2 where the native one is
# AVX-512, else the default kernels. CI (.ci/run) runs it after `make test`.
## make test-cpu-levels: the numerics tests again under a second CPU dispatch level
test-cpu-levels: $(DEV)
	@native=$$($(BIN)/python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"); \
	case "$$native" in AVX512*) level=avx2;; *) level=default;; esac; \
	echo "test-cpu-levels: native kernels $$native; running the numerics tests with ATEN_CPU_CAPABILITY=$$level"; \
	ATEN_CPU_CAPABILITY=$$level EVALSUITE_EXPECT_CPU_LEVEL=$$level \
	  $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m numerics

benchmark: $(DEV)
	$(BIN)/python -m pytest benchmarks --benchmark-only -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
