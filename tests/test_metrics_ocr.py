"""Text-rendering metrics (ocr_sentence_accuracy, ocr_ned) with RapidOCR's real bundled PP-OCRv4
models: the definitions, reading rendered English and Chinese strings (images rendered once and
committed in tests/data/ocr, so no font is needed here), degradation, the text-inpaint set and the
bad inputs."""

import json
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from evalsuite.data.build_text import SIZE, face_mask, layout, manifest_rows
from evalsuite.data.cases import ManifestError, parse_manifest_line
from evalsuite.data.registry import load_dataset
from evalsuite.data.validate import validate_dataset
from evalsuite.metrics import functional as fn
from evalsuite.metrics import ocr
from evalsuite.metrics.base import MetricBatch, MetricOptionError, ScoringContext
from evalsuite.metrics.features import MetricWeightsError
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "ocr"
STRINGS = json.loads((DATA / "strings.json").read_text(encoding="utf-8"))
TEXT_SET = REPO / "evalsuite" / "data" / "sets" / "text-inpaint"


@pytest.fixture(scope="module")
def engine():
    return ocr.get_engine("rapidocr")


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _accuracy(engine, lang: str, degrade=lambda im: im) -> tuple[float, float]:
    acc, ned = [], []
    for name, target in STRINGS.items():
        if name.startswith(lang):
            read = ocr.read_text(engine, _rgb(degrade(Image.open(DATA / name))))
            acc.append(fn.sentence_accuracy(read, target))
            ned.append(fn.normalized_edit_similarity(read, target))
    return float(np.mean(acc)), float(np.mean(ned))


# -- definitions --------------------------------------------------------------------------------
def test_normalisation_folds_width_case_and_whitespace():
    assert fn.normalize_text("ＯＰＥＮ　２４ Hours") == "open24hours"
    assert fn.normalize_text("Open  24\tHours", keep_spaces=True) == "open 24 hours"
    assert fn.normalize_text("Open", case_sensitive=True) == "Open"
    assert fn.normalize_text("欢迎，光临") == "欢迎,光临"  # full-width comma → ASCII


def test_levenshtein_and_ned_match_anytext_definitions():
    assert fn.levenshtein("kitten", "sitting") == 3
    assert fn.levenshtein("", "abc") == 3 and fn.levenshtein("abc", "abc") == 0
    assert fn.levenshtein("欢迎光临", "欢迎光顾") == 1
    # AnyText's get_ld: 1 - dist / (max(len) + 1e-5); ours drops the 1e-5
    for p, t in [("kitten", "sitting"), ("exit", "exit"), ("", "abc"), ("ab", "ba")]:
        anytext = 1 - fn.levenshtein(p, t) / (max(len(p), len(t)) + 1e-5)
        assert fn.normalized_edit_similarity(p, t) == pytest.approx(anytext, abs=1e-5)
    assert fn.normalized_edit_similarity("", "") == 1.0
    assert fn.sentence_accuracy("open 24 hours", "OPEN 24 HOURS") == 1.0
    assert fn.sentence_accuracy("OPEN 24 HOUR", "OPEN 24 HOURS") == 0.0


def test_text_region_from_box_or_mask():
    m = np.zeros((100, 200), bool)
    m[20:40, 50:150] = True
    assert ocr.text_region((200, 100), None, m, pad=0.0) == (50, 20, 150, 40)
    assert ocr.text_region((200, 100), None, m, pad=0.1) == (48, 18, 152, 42)
    assert ocr.text_region((200, 100), (0.0, 0.5, 0.5, 1.0), None, pad=0.0) == (0, 50, 100, 100)
    assert ocr.text_region((200, 100), (0.0, 0.5, 0.5, 1.0), m, pad=0.0) == (0, 50, 100, 100)  # box wins
    assert ocr.text_region((200, 100), None, np.zeros((100, 200), bool)) is None
    assert ocr.text_region((200, 100), None, None) is None


# -- real weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rendered_strings_read_back(engine, lang):
    acc, ned = _accuracy(engine, lang)
    assert acc >= 0.9 and ned >= 0.95, (lang, acc, ned)


@pytest.mark.parametrize(
    "kind, levels",
    [
        ("blur", [0.0, 2.5, 6.0]),
        ("noise", [0.0, 90.0, 200.0]),
    ],
)
def test_accuracy_falls_as_the_image_degrades(engine, kind, levels):
    rng = np.random.default_rng(0)

    def degrade(level):
        def f(im):
            if level == 0:
                return im
            if kind == "blur":
                return im.filter(ImageFilter.GaussianBlur(level))
            a = np.asarray(im, np.float64) + rng.normal(0, level, np.asarray(im).shape)
            return Image.fromarray(a.clip(0, 255).astype(np.uint8))

        return f

    res = [_accuracy(engine, "en", degrade(v)) + _accuracy(engine, "zh", degrade(v)) for v in levels]
    acc = [(a + c) / 2 for a, _, c, _ in res]
    ned = [(b + d) / 2 for _, b, _, d in res]
    assert acc[0] >= 0.9
    assert acc[0] >= acc[1] >= acc[2] and acc[2] <= acc[0] - 0.5, acc
    assert ned[0] >= ned[1] >= ned[2] and ned[2] < ned[0], ned


# -- the metric classes ---------------------------------------------------------------------------
def _batch(cases, images: torch.Tensor) -> MetricBatch:
    return MetricBatch(rows=[{"case_id": c.id} for c in cases], images=images)


def _to_tensor(arrs) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(a, np.float32) / 255).permute(2, 0, 1) for a in arrs])


def test_text_inpaint_sources_score_near_one_and_noise_scores_zero():
    ds = load_dataset("text-inpaint")
    ctx = ScoringContext(config="x", task="inpaint", dataset=ds)
    acc, ned = ocr.OCRSentenceAccuracy(), ocr.OCRNed()
    for m in (acc, ned):
        m.prepare(ctx)
    srcs = [np.asarray(Image.open(c.image).convert("RGB")) for c in ds.cases]
    for i in range(0, len(ds), 16):
        b = _batch(ds.cases[i : i + 16], _to_tensor(srcs[i : i + 16]))
        acc.update(b)
        ned.update(b)
    ra, rn = acc.compute(), ned.compute()
    assert ra.n == len(ds) and ra.value >= 0.9 and rn.value >= 0.95, (ra, rn)
    assert ra.extra["source_ceiling"] == ra.value  # the image is the source
    assert ra.extra["engine"].startswith("rapidocr-onnxruntime-1.4.4/")
    assert ra.extra["nan_reasons"] == {}
    # an image with no legible text: a measured 0 (read ""), not NaN; the source still reads
    noise = np.random.default_rng(1).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    acc.reset()
    vals = acc.update(_batch(ds.cases[:4], _to_tensor(noise)))
    assert vals == [0.0] * 4
    assert acc.samples("ocr_sentence_accuracy_source") == [1.0] * 4
    assert all(e["read"] == "" for e in acc.compute().extra["examples"])


def test_cases_without_text_region_or_readable_characters_are_nan_with_the_reason(tmp_path):
    from tests.conftest import write_dataset

    rows = [
        {"id": "no-text", "prompt": "p", "image": "i/a.png", "mask": "m/a.png"},
        {"id": "no-region", "prompt": "p", "text": "HELLO"},
        {"id": "emoji", "prompt": "p", "image": "i/a.png", "mask": "m/a.png", "text": "HI 🙂"},
        {"id": "arabic", "prompt": "p", "text": "مرحبا", "text_box": [0.1, 0.1, 0.9, 0.5]},
        {"id": "boxed", "prompt": "p", "text": "HELLO", "text_box": [0.1, 0.1, 0.9, 0.5]},
    ]
    ds = load_dataset(str(write_dataset(tmp_path / "ds", rows)))
    m = ocr.OCRNed()
    m.prepare(ScoringContext(config="x", task="t2i", dataset=ds))
    imgs = torch.full((5, 3, 64, 64), 0.5)
    vals = m.update(_batch(ds.cases, imgs))
    assert [math.isnan(v) for v in vals] == [True, True, True, True, False]
    assert vals[4] == 0.0  # a grey image read as "" against HELLO
    r = m.compute()
    assert r.extra["nan_reasons"] == {ocr.NO_TEXT: 1, ocr.NO_REGION: 1, ocr.UNREADABLE: 2}
    assert r.n == 1
    m.prepare(ScoringContext(config="x", task="t2i", dataset=None))
    assert math.isnan(m.update(_batch(ds.cases[:1], imgs[:1]))[0])


def test_engine_missing_or_unknown_is_a_clear_message(monkeypatch):
    with pytest.raises(MetricOptionError, match="engine must be one of rapidocr"):
        ocr.OCRNed(engine="tesseract")
    m = ocr.OCRNed(engine="no_such_module_xyz:Engine")
    with pytest.raises(MetricOptionError, match="not an importable 'module:Class'"):
        m.update(MetricBatch(rows=[], images=torch.zeros(0, 3, 8, 8)))
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if not installed
    monkeypatch.setattr(ocr, "_ENGINE_CACHE", {})
    with pytest.raises(MetricWeightsError, match="pip install rapidocr-onnxruntime"):
        ocr.get_engine("rapidocr")
    with pytest.raises(MetricWeightsError, match="ocr_ned: OCR engine 'rapidocr' unavailable"):
        ocr.OCRNed()
    from evalsuite.metrics.features import check_metric_weights

    with pytest.raises(MetricWeightsError, match="pip install rapidocr-onnxruntime"):  # before generation
        check_metric_weights(["latency", "ocr_sentence_accuracy"], "random")
    check_metric_weights(
        ["ocr_ned"], "random", metric_options={"ocr_ned": {"engine": f"{__name__}:_UpperEngine"}}
    )


class _UpperEngine:
    """A pluggable engine: reads every region as a fixed string."""

    id = "upper-test-engine"

    def read(self, image, mode="detect"):
        return "hello"

    def charset(self):
        return None


def test_pluggable_engine(tmp_path):
    from tests.conftest import write_dataset

    ds = load_dataset(
        str(
            write_dataset(
                tmp_path / "ds", [{"id": "a", "prompt": "p", "text": "HELLO", "text_box": [0, 0, 1, 1]}]
            )
        )
    )
    m = ocr.OCRSentenceAccuracy(engine=f"{__name__}:_UpperEngine", source_ceiling=False)
    m.prepare(ScoringContext(config="x", task="t2i", dataset=ds))
    assert m.update(_batch(ds.cases, torch.zeros(1, 3, 32, 32))) == [1.0]
    assert m.compute().extra["engine"] == "upper-test-engine"
    assert ocr.OCRSentenceAccuracy(
        engine=f"{__name__}:_UpperEngine", case_sensitive=True
    ).options.case_sensitive


# -- the shipped set and the manifest fields -----------------------------------------------------
def test_text_inpaint_set_is_the_layout_and_validates():
    ds = load_dataset("text-inpaint")
    rep = validate_dataset(ds)
    assert rep.ok and not rep.warnings, rep.to_text()
    assert len(ds) >= 40
    langs = {c.category for c in ds}
    assert langs == {"text-rendering-en", "text-rendering-zh"}
    assert all(c.text and c.text in c.prompt for c in ds)
    cases = layout()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in manifest_rows(cases))
    assert (TEXT_SET / "manifest.jsonl").read_text(encoding="utf-8") == text
    for c in cases:
        with Image.open(TEXT_SET / "masks" / f"{c.id}.png") as im:
            assert im.mode == "1" and np.array_equal(np.asarray(im), face_mask(c))
        with Image.open(TEXT_SET / "images" / f"{c.id}.jpg") as im:
            assert im.size == (SIZE, SIZE)
    total = sum(p.stat().st_size for p in TEXT_SET.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


def test_manifest_text_fields(tmp_path):
    def parse(**kw):
        return parse_manifest_line({"id": "a", "prompt": "p", **kw}, tmp_path / "m.jsonl", 1, tmp_path)

    c = parse(text="欢迎", text_box=[0, 0.5, 1, 1])
    assert c.text == "欢迎" and c.text_box == (0.0, 0.5, 1.0, 1.0) and c.extra == {}
    assert parse().text is None
    for bad in ([0.5, 0, 0.4, 1], [0, 0, 1], [0, 0, 1, 1.5], "0,0,1,1"):
        with pytest.raises(ManifestError, match="text_box"):
            parse(text="x", text_box=bad)
    with pytest.raises(ManifestError, match="'text' must be a non-empty string"):
        parse(text="  ")


def test_run_and_score_on_tiny_weights_end_to_end(tmp_path):
    import pandas as pd

    from tests.test_cli import cli

    res = cli(
        "run", "--configs", "flux-cn-beta", "--dataset", "text-inpaint", "--limit", "2", "--set", "steps=2",
        "--metrics", "ocr_sentence_accuracy", "ocr_ned", "--out", str(tmp_path), "--run-id", "r", "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = tmp_path / "r"
    df = pd.read_parquet(run / "samples.parquet")
    assert {"ocr_sentence_accuracy", "ocr_ned", "ocr_sentence_accuracy_source", "ocr_ned_source"} <= set(
        df.columns
    )
    assert df["ocr_sentence_accuracy"].notna().all()
    assert "ocr_ned" in (run / "report.md").read_text(encoding="utf-8")
    res = cli("score", str(run), "--metrics", "ocr_ned", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    got = meta["summary"]["flux-cn-beta"]["metrics"]["ocr_ned"]
    assert got["higher_is_better"] is True and got["engine"].startswith("rapidocr") and got["n"] == 2
    res = cli("compare", str(run), str(run), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "ocr_ned" in "".join(p.read_text(encoding="utf-8") for p in run.glob("compare-vs-r/*.md"))
