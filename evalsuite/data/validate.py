"""Validating a dataset's files before a run: ``validate_dataset(ds) -> ValidationReport``.

The manifest itself is checked when it is read (:func:`evalsuite.data.cases.load_manifest` raises
:class:`~evalsuite.data.cases.ManifestError` naming the file and line for malformed lines, missing files
and duplicate ids). This module opens every image and mask and reports, per case:

=========  ==================================================================================
error      unreadable/truncated/missing image or mask; mask size ≠ image size (unless
           ``allow_mask_resize``); duplicate case id; a mask without an image
warning    empty or full mask (the run records the case as ``skipped`` with the reason), checked
           at the source size and — when a ``resolution`` is given — at that output size, where
           runners check it (a small region can vanish when the mask is resized with nearest
           neighbour); image converted to RGB (RGBA, palette, CMYK, 16-bit, greyscale); non-binary
           mask pixels (binarised at 0.5, counted); mask resized to the image (opt-in); image
           smaller than the configuration's resolution (upscaled with Lanczos); unknown manifest
           fields or CSV columns (ignored; with the known field they are closest to)
=========  ==================================================================================

A run never stops on a bad case: at run time the same problems become per-row ``error`` or
``skipped`` statuses. Validation lets you find them first (``evalsuite datasets validate NAME``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from evalsuite.data.cases import Dataset
from evalsuite.data.imageio import ImageError, inspect_image, load_mask, mask_stats, resize_mask


@dataclass(frozen=True)
class Issue:
    """One finding: ``level`` is ``error`` or ``warning``; ``case`` the case id (or ``None``)."""

    level: str
    case: str | None
    code: str
    message: str


@dataclass
class ValidationReport:
    """The result of :func:`validate_dataset`.

    Attributes:
        dataset: dataset name.
        fingerprint: dataset fingerprint.
        n_cases: number of cases checked.
        issues: every finding, in case order.
        counts: totals, e.g. ``nonbinary_pixels``, ``empty_masks``, ``full_masks``, ``converted_images``.
    """

    dataset: str
    fingerprint: str
    n_cases: int
    issues: list[Issue] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> list[Issue]:
        """Issues of level ``error``."""
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues of level ``warning``."""
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def add(self, level: str, case: str | None, code: str, message: str) -> None:
        """Record an issue and count it under ``code``."""
        self.issues.append(Issue(level, case, code, message))
        self.counts[code] += 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "cases": self.n_cases,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": dict(self.counts),
            "issues": [asdict(i) for i in self.issues],
        }

    def to_text(self) -> str:
        """Human-readable summary, one line per issue."""
        head = (
            f"dataset {self.dataset}: {self.n_cases} cases, fingerprint {self.fingerprint}\n"
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        )
        if self.counts.get("nonbinary_pixels"):
            head += f"; {self.counts['nonbinary_pixels']} non-binary mask pixels binarised at 0.5"
        lines = [head]
        lines += [f"{i.level.upper():7} {i.case or '-'}: {i.message}" for i in self.issues]
        return "\n".join(lines)


def _size_of(resolution: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if resolution is None:
        return None
    if isinstance(resolution, int):
        return (resolution, resolution)
    return (int(resolution[0]), int(resolution[1]))


def validate_dataset(
    ds: Dataset,
    resolution: int | tuple[int, int] | None = None,
    allow_mask_resize: bool = False,
    allow_empty_masks: bool = False,
) -> ValidationReport:
    """Open every file of ``ds`` and report problems (see the module doc for the rules).

    Args:
        ds: the dataset.
        resolution: a configuration's output size (side or (width, height)), as runners use it
            (``tiny`` weights: ``tiny_size``, default 64; else ``width`` × ``height``): images smaller
            than it get a warning that they will be upscaled with Lanczos, and masks are also checked
            for being empty/full at that size. Without it, masks are checked at their source size only.
        allow_mask_resize: a mask of another size than its image is a warning (resized nearest
            on load) instead of an error.
        allow_empty_masks: empty/full masks are not reported (for configurations that accept them).

    Returns:
        A :class:`ValidationReport`; it never raises for a bad case.
    """
    rep = ValidationReport(ds.name, ds.fingerprint, len(ds.cases))
    for w in ds.warnings:
        rep.add("warning", None, "unknown_fields", w)
    target = _size_of(resolution)
    seen: set[str] = set()
    for case in ds.cases:
        if case.id in seen:
            rep.add("error", case.id, "duplicate_id", f"duplicate case id {case.id!r}")
        seen.add(case.id)
        if case.mask is not None and case.image is None:
            rep.add("error", case.id, "mask_without_image", f"case has a mask ({case.mask}) but no image")
        info = None
        if case.image is not None:
            try:
                info = inspect_image(case.image)
            except ImageError as exc:
                rep.add("error", case.id, "bad_image", str(exc))
            else:
                if info.needs_conversion:
                    rep.add(
                        "warning",
                        case.id,
                        "converted_images",
                        f"{case.image}: mode {info.mode} is converted to 8-bit RGB on load",
                    )
                if target and (info.size[0] < target[0] or info.size[1] < target[1]):
                    rep.add(
                        "warning",
                        case.id,
                        "upscaled_images",
                        f"{case.image}: {info.size[0]}x{info.size[1]} is smaller than the configuration's "
                        f"{target[0]}x{target[1]}; it is upscaled with Lanczos (mask: nearest)",
                    )
        if case.mask is not None:
            try:
                st = mask_stats(case.mask)
            except ImageError as exc:
                rep.add("error", case.id, "bad_mask", str(exc))
                continue
            if info is not None and st.size != info.size:
                msg = (
                    f"{case.mask}: mask is {st.size[0]}x{st.size[1]} but the image is "
                    f"{info.size[0]}x{info.size[1]}"
                )
                if allow_mask_resize:
                    rep.add(
                        "warning",
                        case.id,
                        "mask_resized",
                        msg + "; resized with nearest neighbour (opted in)",
                    )
                else:
                    rep.add(
                        "error",
                        case.id,
                        "mask_size_mismatch",
                        msg + "; fix the mask or opt in with allow_mask_resize / --allow-mask-resize",
                    )
            if st.n_nonbinary:
                rep.add(
                    "warning",
                    case.id,
                    "nonbinary_masks",
                    f"{case.mask}: {st.n_nonbinary} non-binary pixels "
                    f"({100.0 * st.n_nonbinary / st.n_pixels:.2f} %) binarised at 0.5",
                )
                rep.counts["nonbinary_pixels"] += st.n_nonbinary
            if allow_empty_masks:
                continue
            if st.empty or st.full:
                kind = "empty (nothing to inpaint)" if st.empty else "full (no region to keep)"
                rep.add(
                    "warning",
                    case.id,
                    "empty_masks" if st.empty else "full_masks",
                    f"{case.mask}: mask is {kind} at its source size {st.size[0]}x{st.size[1]}; "
                    "inpainting runs record this case as skipped",
                )
            elif target is not None and info is not None:
                _check_at_output_size(rep, case.id, case.mask, st, info, target, allow_mask_resize)
    return rep


def _check_at_output_size(
    rep: ValidationReport,
    case_id: str,
    mask_path: Any,
    st: Any,
    info: Any,
    target: tuple[int, int],
    allow_mask_resize: bool,
) -> None:
    """Empty/full at the output size, resized as runners do: to the image's size (opt-in), then
    nearest neighbour to the output size."""
    if info is not None and st.size != info.size:
        if not allow_mask_resize:
            return  # already an error
        mask = resize_mask(load_mask(mask_path), info.size)
    else:
        mask = load_mask(mask_path)
    out = resize_mask(mask, target)
    if out.any() and not out.all():
        return
    empty = not out.any()
    kind = "empty (nothing to inpaint)" if empty else "full (no region to keep)"
    gone = f"its {st.n_masked} masked" if empty else f"its {st.n_pixels - st.n_masked} kept"
    rep.add(
        "warning",
        case_id,
        "empty_masks" if empty else "full_masks",
        f"{mask_path}: mask is {kind} at the output size {target[0]}x{target[1]} ({gone} pixels of "
        f"{st.size[0]}x{st.size[1]} vanish when resized with nearest neighbour, as runners do); "
        "runs at that size record this case as skipped",
    )
