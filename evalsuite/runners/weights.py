"""Weight policies and where real weights are read from.

``hub``
    Real checkpoints. A model reference (``black-forest-labs/FLUX.1-dev``) resolves, in order,
    to ``<weights_dir>/<org>/<name>`` (air-gapped clusters: ``--weights-dir`` or
    ``EVALSUITE_WEIGHTS_DIR``), ``<weights_dir>/<name>``, an existing local directory of that
    name, and finally the Hugging Face hub id itself (which honours ``HF_HOME`` and offline
    mode: offline, a model that is not in the cache fails at once, see :func:`hub_offline`).
``random``
    Full-size architectures with random weights, built directly on the target device in the
    target dtype. Speed and memory are real; quality numbers mean nothing.
``tiny``
    Small configurations of the same architectures (CPU, seconds), with tokenizers built from
    in-code vocabularies. For tests and the demo; quality numbers mean nothing.

Only safetensors weights are loaded (``use_safetensors=True``); remote code is never trusted.

Offline mode is huggingface_hub's own (:func:`huggingface_hub.is_offline_mode`): ``HF_HUB_OFFLINE=1``,
or ``TRANSFORMERS_OFFLINE=1`` when ``HF_HUB_OFFLINE`` is unset, read once when huggingface_hub is
first imported — set them before starting evalsuite. evalsuite decides exactly as the downloads
it triggers will.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evalsuite import errors
from evalsuite.vocab import NO_QUALITY_EVIDENCE, WEIGHT_POLICIES, Policy, quality_evidence

__all__ = ["NO_QUALITY_EVIDENCE", "Policy", "Weights", "WeightsError", "hub_offline"]


def hub_offline() -> bool:
    """Whether the Hugging Face hub is offline, by huggingface_hub's own rule (see the module docstring)."""
    import huggingface_hub

    is_offline = getattr(huggingface_hub, "is_offline_mode", None)
    if is_offline is not None:
        return bool(is_offline())
    from huggingface_hub import constants  # older huggingface_hub: the constant only

    return bool(constants.HF_HUB_OFFLINE)


class WeightsError(errors.WeightsError, RuntimeError):
    """Weights that cannot be found or loaded; the message names the model and the fix."""


@dataclass(frozen=True)
class Weights:
    """A weights policy plus the optional air-gapped weights directory."""

    policy: Policy = "tiny"
    weights_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.policy not in WEIGHT_POLICIES:
            from evalsuite.config.runconfig import RunConfigError

            raise RunConfigError(
                f"unknown weights policy {self.policy!r}; choose one of {', '.join(WEIGHT_POLICIES)}"
            )

    @property
    def quality_evidence(self) -> bool:
        """False for ``tiny`` and ``random``: their images carry no quality evidence."""
        return quality_evidence(self.policy)

    def resolve(self, model: str) -> str:
        """Where to load ``model`` from under the ``hub`` policy: a local folder or the hub id.

        Raises:
            WeightsError: when the hub is offline (:func:`hub_offline`), the id is not a local
                folder and is not in the local Hugging Face cache.
        """
        if not model:
            raise WeightsError("no model id configured; set the configuration's 'model' parameter")
        wdir = self.weights_dir or (
            Path(os.environ["EVALSUITE_WEIGHTS_DIR"]) if os.environ.get("EVALSUITE_WEIGHTS_DIR") else None
        )
        if wdir is not None:
            for cand in (wdir / model, wdir / Path(model).name):
                if cand.exists():
                    return str(cand)
        if Path(model).exists():
            return str(Path(model))
        if hub_offline():
            try:
                from huggingface_hub import snapshot_download

                return snapshot_download(model, local_files_only=True)
            except Exception as exc:
                where = f" or under --weights-dir {wdir}" if wdir else ""
                raise WeightsError(
                    f"model {model!r} is not a local folder{where} and not in the Hugging Face cache, and "
                    "the hub is offline (HF_HUB_OFFLINE is set, or TRANSFORMERS_OFFLINE); download it on a "
                    "connected machine "
                    f"(huggingface-cli download {model} --local-dir WEIGHTS_DIR/{model}) and pass --weights-dir WEIGHTS_DIR"
                ) from exc
        return model
