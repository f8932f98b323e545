"""Human-preference metrics (aesthetic, PickScore, HPS v2.1, ImageReward) on tiny random weights.

The reference packages (``image-reward``, ``hpsv2``) cannot be installed beside our pins (old
timm, fairscale, protobuf<4, pytest==7.2.0); ``make test`` unpacks their wheels without dependencies
(``tests/reference-code.txt``) and the two parity tests import only their model modules. Beside
those, parity is shown piecewise:
preprocessing against the published transforms themselves (torchvision on PIL as in OpenAI CLIP /
the aesthetic predictor / ImageReward, open_clip's ``resize_mode='longest'`` transform for HPS,
transformers' ``CLIPImageProcessor`` for PickScore), the MLP heads against a numpy evaluation by
hand, the ImageReward checkpoint key mapping against BLIP's parameter names, the HPS checkpoint
layout (``state_dict``, ``module.`` prefixes, fp16), and the full-size architectures' sizes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.metrics import features as fx
from evalsuite.metrics import functional as fn
from evalsuite.metrics import preference_nets as pn
from evalsuite.metrics.base import MetricBatch
from evalsuite.registry import METRICS

FAMILIES = ("aesthetic", "pickscore", "hpsv21", "imagereward")
PROMPTS = ["a red apple on a table", "a cat, sleeping", "blue sky", "an old car"]


def _images(n: int = 4, h: int = 48, w: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g)


def _masks(n: int = 4, h: int = 48, w: int = 40) -> torch.Tensor:
    m = torch.zeros(n, 1, h, w)
    for i in range(n):
        m[i, :, 4 + i : 30 + i, 6 : 20 + 3 * i] = 1
    return m


def _batch(x: torch.Tensor, masks: torch.Tensor | None = None, prompts=PROMPTS) -> MetricBatch:
    return MetricBatch(rows=[{}] * len(x), images=x, prompts=list(prompts[: len(x)]), masks=masks)


def _smooth_uint8(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A low-frequency 8-bit image (so resampling-kernel differences stay small)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 9, 11, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _to_float(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


# ---------------------------------------------------------------------------------------------
# preprocessing against the published transforms
@pytest.mark.parametrize("hw", [(300, 451), (451, 300), (256, 256)])
def test_shortest_side_preprocessing_matches_torchvision_on_pil(hw):
    """OpenAI CLIP / aesthetic predictor / ImageReward: Resize(224, BICUBIC) + CenterCrop(224) on PIL."""
    from torchvision import transforms as T

    a = _smooth_uint8(*hw)
    ref = T.Compose(
        [
            T.Resize(224, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(pn.OPENAI_MEAN, pn.OPENAI_STD),
        ]
    )(Image.fromarray(a))[None]
    ours = pn.preprocess(_to_float(a), pn.Preprocess(224), torch.device("cpu"))
    assert ours.shape == ref.shape == (1, 3, 224, 224)
    d = (ours - ref).abs() * torch.tensor(pn.OPENAI_STD).view(1, 3, 1, 1)  # back to [0, 1] units
    assert float(d.mean()) < 1.5 / 255 and float(d.max()) < 8 / 255


@pytest.mark.parametrize("hw", [(300, 451), (451, 300)])
def test_pickscore_preprocessing_matches_transformers_clip_image_processor(hw):
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        resample=3,  # PIL bicubic, as laion/CLIP-ViT-H-14-laion2B-s32B-b79K's preprocessor_config.json
        image_mean=list(pn.OPENAI_MEAN),
        image_std=list(pn.OPENAI_STD),
    )
    a = _smooth_uint8(*hw, seed=1)
    ref = proc(images=Image.fromarray(a), return_tensors="pt")["pixel_values"]
    ours = pn.preprocess(
        _to_float(a), pn.pickscore_net("random", torch.device("cpu")).pre, torch.device("cpu")
    )
    assert pn.pickscore_net("random", torch.device("cpu")).pre.crop == "floor"
    ours = pn.preprocess(
        _to_float(a), dataclasses.replace(pn.Preprocess(224), crop="floor"), torch.device("cpu")
    )
    d = (ours - ref).abs() * torch.tensor(pn.OPENAI_STD).view(1, 3, 1, 1)
    assert float(d.mean()) < 1.5 / 255 and float(d.max()) < 8 / 255


@pytest.mark.parametrize("hw", [(300, 451), (451, 300)])
def test_hps_preprocessing_matches_open_clip_longest_side_pad(hw):
    """HPS v2's evaluation transform: longest side to 224, black pad (open_clip 'longest' mode)."""
    import open_clip

    a = _smooth_uint8(*hw, seed=2)
    t = open_clip.image_transform(
        224, is_train=False, mean=pn.OPENAI_MEAN, std=pn.OPENAI_STD, resize_mode="longest", fill_color=0
    )
    ref = t(Image.fromarray(a))[None]
    ours = pn.preprocess(_to_float(a), pn.Preprocess(224, resize="longest_pad"), torch.device("cpu"))
    assert ours.shape == ref.shape
    d = (ours - ref).abs() * torch.tensor(pn.OPENAI_STD).view(1, 3, 1, 1)
    assert float(d.mean()) < 1.5 / 255 and float(d.max()) < 8 / 255
    # the pad is black before normalisation, on the same rows/columns
    black = (torch.zeros(1, 3, 1, 1) - torch.tensor(pn.OPENAI_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        pn.OPENAI_STD
    ).view(1, 3, 1, 1)
    assert torch.equal(torch.isclose(ours, black, atol=1e-5), torch.isclose(ref, black, atol=1e-5))


def _reference_root(var: str) -> str:
    """Where the reference package's code lies: ``$var`` (a checkout), else the unpacked wheels of
    ``tests/reference-code.txt`` in ``<venv>/reference-code`` (what ``make test`` installs)."""
    import os
    import sys

    root = os.environ.get(var) or os.path.join(sys.prefix, "reference-code")
    if not os.path.isdir(root):
        pytest.skip(
            f"reference code not installed: pip install --no-deps --require-hashes --target {root} "
            f"-r tests/reference-code.txt (or set {var} to a checkout)"
        )
    return root


def _reference_hpsv2(tmp_path):
    """HPS v2's own code (``tgxs002/HPSv2``: its open_clip fork), from the ``hpsv2`` wheel or a
    checkout (:func:`_reference_root`). Not importable as a package beside our pins (it pins
    protobuf<4, pytest==7.2.0, ...); its top-level ``__init__`` imports ``clint`` (stubbed here; the
    model code does not use it). The 1.2.0 wheel lacks ``bpe_simple_vocab_16e6.txt.gz``, which its
    tokenizer reads at import; the checkout's file is byte-identical to the one open_clip ships
    (sha256 924691ac…), so the package is mirrored by symlinks into ``tmp_path`` with open_clip's
    file beside it. The model code runs unchanged."""
    import os
    import shutil
    import sys
    import types

    import open_clip

    root = _reference_root("EVALSUITE_REF_HPSV2")
    vocab = os.path.join("hpsv2", "src", "open_clip", "bpe_simple_vocab_16e6.txt.gz")
    if not os.path.exists(os.path.join(root, vocab)):
        shutil.copytree(os.path.join(root, "hpsv2"), tmp_path / "hpsv2", copy_function=os.symlink)
        shutil.copy(
            os.path.join(os.path.dirname(open_clip.__file__), os.path.basename(vocab)), tmp_path / vocab
        )
        root = str(tmp_path)
    sys.path.insert(0, root)
    for n in ("clint", "clint.textui"):
        sys.modules.setdefault(n, types.ModuleType(n))
    sys.modules["clint"].textui = sys.modules["clint.textui"]  # type: ignore[attr-defined]
    sys.modules["clint.textui"].progress = None  # type: ignore[attr-defined]
    from hpsv2.src.open_clip import factory

    return factory


def test_hps_score_equals_hps_v2s_own_code_on_shared_random_weights(tmp_path):
    """Parity with HPS v2's ``img_score.score`` path (its ``create_model_and_transforms(...,
    light_augmentation=True)`` transform on a PIL image, its model, ``image_features @
    text_features.T``) on our tiny architecture with the same weights: within 1e-5."""
    factory = _reference_hpsv2(tmp_path)
    factory._MODEL_CONFIGS["evalsuite-tiny"] = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    ref, _, pre = factory.create_model_and_transforms(
        "evalsuite-tiny", None, precision="fp32", device="cpu", light_augmentation=True, output_dict=True
    )
    net = pn.hps_net("random", torch.device("cpu"))
    ref.load_state_dict(net.modules["clip"].state_dict())
    ref.eval()
    tok = factory.get_tokenizer("evalsuite-tiny")
    for hw in ((61, 45), (45, 61), (32, 32), (200, 120)):
        a = _smooth_uint8(*hw, seed=hw[0])
        with torch.no_grad():
            out = ref(pre(Image.fromarray(a))[None], tok([PROMPTS[0]]))
            want = float((out["image_features"] @ out["text_features"].T)[0, 0])
        got = pn.score("hpsv21", _to_float(a), PROMPTS[:1], "random")[0]
        assert got == pytest.approx(want, abs=1e-5)


def test_preprocessing_is_shared_between_metrics_with_the_same_input():
    x = _images(2, 64, 64)
    spec = pn.Preprocess(32)
    a = pn._resized(x, 32, "shortest", torch.device("cpu"))
    b = pn._resized(x[0:2], 32, "shortest", torch.device("cpu"))  # a view of the same storage
    assert a is b
    assert pn._resized(x.clone(), 32, "shortest", torch.device("cpu")) is not a
    # the cached result equals a fresh computation on a copy (which misses the cache)
    cached = pn.preprocess(x, spec, torch.device("cpu"))
    assert torch.equal(cached, pn.preprocess(x.clone(), spec, torch.device("cpu")))


# ---------------------------------------------------------------------------------------------
# heads by hand
def test_regression_head_equals_numpy_and_the_aesthetic_input_is_l2_normalised():
    torch.manual_seed(3)
    head = pn.RegressionHead().eval()
    e = np.random.default_rng(0).normal(size=(3, 768))
    x = e / np.linalg.norm(e, axis=-1, keepdims=True)
    for i in (0, 2, 4, 6, 7):
        lin = head.layers[i]
        x = x @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
    got = head(torch.from_numpy(e / np.linalg.norm(e, axis=-1, keepdims=True)).float()).squeeze(-1)
    np.testing.assert_allclose(got.detach().numpy(), x[:, 0], rtol=1e-5, atol=1e-5)
    assert list(head.state_dict()) == [f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")]


def test_aesthetic_score_is_the_head_of_the_normalised_clip_embedding():
    net = pn.aesthetic_net("random", torch.device("cpu"))
    x = pn.preprocess(_images(2), net.pre, torch.device("cpu"))
    e = net.modules["clip"].encode_image(x).float()
    e = e / e.norm(dim=-1, keepdim=True)
    want = net.modules["head"](e).squeeze(-1)
    torch.testing.assert_close(pn.aesthetic_scores(net, x), want, rtol=1e-6, atol=1e-6)


def test_imagereward_output_is_standardised_with_the_published_mean_and_std():
    net = pn.imagereward_net("random", torch.device("cpu"))
    m = net.modules["blip"]
    x = pn.preprocess(_images(2), net.pre, torch.device("cpu"))
    tok = net.tokenize(PROMPTS[:2])
    assert tok["input_ids"].shape == (2, 35)
    img = m.vision(pixel_values=x).last_hidden_state
    cls = m.text(
        input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], encoder_hidden_states=img
    ).last_hidden_state[:, 0]
    raw = m.head(cls).squeeze(-1)
    got = pn.imagereward_scores(net, x, PROMPTS[:2])
    torch.testing.assert_close(got, (raw - 0.16717362830052426) / 1.0333394966054072, rtol=1e-5, atol=1e-5)


def test_imagereward_tokenizer_reads_a_bert_vocab_file(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "apple", "app", "##le", "on"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = pn.bert_tokenizer(str(tmp_path / "vocab.txt"))(["A red APPLE on", " ".join(["a"] * 50)])
    ids = tok["input_ids"]
    assert ids.shape == (2, 35)
    assert ids[0, :6].tolist() == [2, 5, 6, 7, 10, 3] and set(ids[0, 6:].tolist()) == {0}
    assert tok["attention_mask"][0].sum() == 6
    assert ids[1, 0] == 2 and ids[1, 34] == 3 and tok["attention_mask"][1].sum() == 35  # truncated


def test_pickscore_tokenizer_is_the_clip_bpe_of_open_clip_without_its_text_fixing():
    import open_clip

    ours = pn.clip_hf_tokenizer()
    oc = open_clip.tokenizer.SimpleTokenizer()
    plain = [
        "A red apple on a table",
        "a photo of a cat, 4k, HDR!!",
        "word " * 100,
        "  spaces\tand\nnewlines ",
    ]
    ids, ref = ours(plain)["input_ids"], oc(plain)
    assert ids.shape == (4, 77)
    for a, b in zip(ids, ref, strict=True):
        n = int((b == 49407).nonzero()[0]) + 1  # up to the end token; then we pad with it, open_clip with 0
        assert torch.equal(a[:n], b[:n]) and set(a[n:].tolist()) <= {49407}
    # no ftfy / HTML unescaping (transformers' CLIP tokenizer does neither; open_clip does both)
    assert not torch.equal(ours(["fish &amp; chips"])["input_ids"][0, :6], oc(["fish &amp; chips"])[0, :6])


def test_pickscore_pools_at_the_first_end_token_so_padding_does_not_matter():
    pick = pn.pickscore_net("random", torch.device("cpu"))
    m = pick.modules["clip"]
    t = pick.tokenize(["a red apple"])
    zero_pad = t["input_ids"].clone()
    zero_pad[0, int(t["attention_mask"].sum()) :] = 0
    a = m.text_model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output
    b = m.text_model(input_ids=zero_pad).pooler_output
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_pickscore_and_hps_are_scaled_cosines():
    dev = torch.device("cpu")
    pick = pn.pickscore_net("random", dev)
    x = pn.preprocess(_images(2), pick.pre, dev)
    m = pick.modules["clip"]
    ids = pick.tokenize(PROMPTS[:2])["input_ids"]
    img = m.visual_projection(m.vision_model(pixel_values=x).pooler_output)
    txt = m.text_projection(m.text_model(input_ids=ids).pooler_output)
    cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    torch.testing.assert_close(pn.pickscore_scores(pick, x, PROMPTS[:2]), m.logit_scale.exp() * cos)
    hps = pn.hps_net("random", dev)
    x = pn.preprocess(_images(2), hps.pre, dev)
    hm = hps.modules["clip"]
    cos = torch.nn.functional.cosine_similarity(hm.encode_image(x), hm.encode_text(hps.tokenize(PROMPTS[:2])))
    torch.testing.assert_close(pn.hps_scores(hps, x, PROMPTS[:2]), cos, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# metric invariants (tiny random weights)
@pytest.mark.parametrize("family", FAMILIES)
def test_metric_is_deterministic_batch_independent_and_records_no_quality_evidence(family):
    x = _images()
    a = METRICS.get(family)(metric_weights="random")
    whole = a.update(_batch(x))
    assert len(whole) == 4 and all(math.isfinite(v) for v in whole)
    b = METRICS.get(family)(metric_weights="random", batch_size=3)
    split = b.update(_batch(x[:1], prompts=PROMPTS[:1])) + b.update(_batch(x[1:], prompts=PROMPTS[1:]))
    np.testing.assert_allclose(split, whole, rtol=1e-4, atol=1e-5)
    res = a.compute()
    assert res.n == 4 and res.value == pytest.approx(float(np.mean(whole)))
    assert a.quality_evidence is False and a.describe()["metric_weights"] == "random"
    assert a.higher_is_better is True
    assert res.extra["weights"] == [] and res.extra["preprocessing"]


def test_metric_contract_options_direction_and_merged_shards():
    from evalsuite.metrics.base import Column, MetricOptionError, column_facts

    with pytest.raises(MetricOptionError, match=r"did you mean 'batch_size'.*valid options: metric_weights"):
        METRICS.get("pickscore")(metric_weights="random", batchsize=3)
    with pytest.raises(MetricOptionError, match="batch_size must be ≥ 1"):
        METRICS.get("pickscore")(metric_weights="random", batch_size="0")
    facts = column_facts()
    for name in (n for f in FAMILIES for n in (f, f"{f}_masked")):
        assert facts[name] == Column("", True)
        assert set(METRICS.get(name).option_names()) == {"metric_weights", "metric_weights_dir", "batch_size"}
    x, prompts = _images(), PROMPTS[:3] + ["a very long prompt " * 40]
    one = METRICS.get("hpsv21")(metric_weights="random")
    whole = one.update(_batch(x, prompts=prompts))
    a, b = METRICS.get("hpsv21")(metric_weights="random"), METRICS.get("hpsv21")(metric_weights="random")
    a.update(_batch(x[:2], prompts=prompts[:2]))
    b.update(_batch(x[2:], prompts=prompts[2:]))
    a.merge_state(b)  # shards scored apart combine like one pass (merge_state puts b's values first)
    np.testing.assert_allclose(sorted(a.samples()), sorted(whole), rtol=1e-5, atol=1e-6)
    assert a.compute().value == pytest.approx(one.compute().value, rel=1e-5)
    assert a.compute().extra["truncated_prompts"] == one.compute().extra["truncated_prompts"] == 1
    a.reset()
    assert a.compute().n == 0 and math.isnan(a.compute().value)


def test_preference_metrics_are_opt_in():
    from evalsuite.metrics.scoring import default_metrics

    defaults = set(default_metrics(["t2i", "inpaint"]))
    assert defaults and not defaults & {n for f in FAMILIES for n in (f, f"{f}_masked")}


def test_loading_a_network_leaves_the_callers_random_stream_alone():
    pn._NETS.clear()
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    for fam in FAMILIES:
        pn.LOADERS[fam]("random", torch.device("cpu"))
    assert torch.equal(torch.rand(3), want)


@pytest.mark.parametrize("family", ("pickscore", "hpsv21", "imagereward"))
def test_text_metrics_depend_on_the_prompt(family):
    x = _images(2)
    m = METRICS.get(family)(metric_weights="random")
    a = m.update(_batch(x, prompts=["a red apple", "a red apple"]))
    b = m.update(_batch(x, prompts=["zebra crossing at night", "zebra crossing at night"]))
    assert max(abs(p - q) for p, q in zip(a, b, strict=True)) > 1e-6


def test_truncated_prompts_are_counted_with_each_tokenizers_context():
    long = "a very detailed photograph of a red apple on a wooden table " * 4  # ~50 BERT / ~50 CLIP tokens
    x = _images(2)
    got = {}
    for fam in ("pickscore", "hpsv21", "imagereward"):
        m = METRICS.get(fam)(metric_weights="random")
        m.update(_batch(x, prompts=[long, "a red apple"]))
        got[fam] = (m.compute().extra["truncated_prompts"], m.compute().extra["context_length"])
    assert got == {"pickscore": (0, 77), "hpsv21": (0, 77), "imagereward": (1, 35)}
    m = METRICS.get("hpsv21")(metric_weights="random")
    m.update(_batch(x, prompts=[long * 2, long]))
    assert m.compute().extra["truncated_prompts"] == 1
    a = METRICS.get("aesthetic")(metric_weights="random")
    a.update(_batch(x, prompts=[long * 2, long]))
    assert a.compute().n == 2 and "truncated_prompts" not in a.compute().extra  # no prompt, nothing cut


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_variant_scores_the_mask_bounding_box_crop(family):
    x, masks = _images(), _masks()
    masked = METRICS.get(f"{family}_masked")(metric_weights="random")
    got = masked.update(_batch(x, masks))
    crops = [fn.mask_bbox_square_crop(i, m) for i, m in zip(x, masks, strict=True)]
    assert crops[0].shape[-2:] == (26, 26)  # rows 4..29, columns 6..19 padded to a square
    want = [pn.score(family, [c], PROMPTS[i : i + 1], "random")[0] for i, c in enumerate(crops)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    whole = METRICS.get(family)(metric_weights="random").update(_batch(x))
    assert max(abs(p - q) for p, q in zip(got, whole, strict=True)) > 1e-7
    assert masked.tasks == frozenset({"inpaint"}) and "masks" in masked.needs
    assert masked.compute().extra["region"].startswith("mask bounding box")


# ---------------------------------------------------------------------------------------------
# weight files
def _hub(monkeypatch, offline: bool, cache=None) -> None:
    """huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE once at import; evalsuite asks it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    if cache is not None:
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))


@pytest.mark.parametrize(
    "wf", [pn.AESTHETIC_FILE, pn.PICKSCORE_FILE, pn.HPS_FILE, pn.IMAGEREWARD_FILE, pn.BERT_VOCAB_FILE]
)
def test_missing_real_weights_offline_name_the_file_and_the_fetch_command(wf, tmp_path, monkeypatch):
    _hub(monkeypatch, True, tmp_path / "hf")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(fx.MetricWeightsError) as e:
        pn.locate(wf, tmp_path)
    msg = str(e.value)
    assert wf.path in msg and wf.fetch in msg and f"--metric-weights-dir {tmp_path}" in msg


def test_missing_real_weights_through_the_metric(tmp_path, monkeypatch):
    _hub(monkeypatch, True, tmp_path / "hf")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    m = METRICS.get("hpsv21")(metric_weights="real", metric_weights_dir=str(tmp_path))
    with pytest.raises(fx.MetricWeightsError, match="hf download xswu/HPSv2 HPS_v2.1_compressed.pt"):
        m.update(_batch(_images(1), prompts=PROMPTS[:1]))


def _stand_in_hps(tmp_path, monkeypatch):
    """A stand-in HPS file, with the pinned digest replaced by its own (present + matching = found)."""
    import hashlib

    (tmp_path / pn.HPS_FILE.path).write_bytes(b"x")
    wf = dataclasses.replace(pn.HPS_FILE, sha256=hashlib.sha256(b"x").hexdigest())
    monkeypatch.setitem(pn.WEIGHT_FILES, "hpsv21", (wf,))


def test_check_files_before_generation(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _hub(monkeypatch, True, tmp_path / "hf")
    assert pn.check_files(["imagereward_masked", "aesthetic"], "random", tmp_path) == []
    with pytest.raises(fx.MetricWeightsError, match="ImageReward.pt"):
        pn.check_files(["imagereward_masked"], "real", tmp_path)
    _stand_in_hps(tmp_path, monkeypatch)
    assert pn.check_files(["hpsv21", "clip_score"], "real", tmp_path) == []
    _hub(monkeypatch, False)  # online: reported (downloaded when scoring), nothing fetched now
    assert pn.check_files(["pickscore", "hpsv21"], "real", tmp_path) == ["PickScore_v1/model.safetensors"]


def test_pre_generation_weights_check_names_the_preference_files_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(fx.ENV_DIR, raising=False)
    _hub(monkeypatch, True, tmp_path / "hf")
    fx.check_metric_weights(["imagereward", "aesthetic_masked", "hpsv21"], "random")  # nothing needed
    with pytest.raises(fx.MetricWeightsError) as e:
        fx.check_metric_weights(["latency", "imagereward_masked"], "real", tmp_path)
    msg = str(e.value)
    assert pn.IMAGEREWARD_FILE.path in msg and pn.IMAGEREWARD_FILE.fetch in msg
    assert f"--metric-weights-dir {tmp_path}" in msg and "\n" not in msg
    # aesthetic: the CLIP file of clip_score is checked first, then the head
    with pytest.raises(fx.MetricWeightsError, match="open_clip-ViT-L-14-openai"):
        fx.check_metric_weights(["aesthetic"], "real", tmp_path)
    (tmp_path / fx.clip_file(*pn.AESTHETIC_CLIP)).write_bytes(b"x")
    with pytest.raises(fx.MetricWeightsError, match="sac\\+logos\\+ava1-l14-linearMSE.pth"):
        fx.check_metric_weights(["aesthetic"], "real", tmp_path)
    _stand_in_hps(tmp_path, monkeypatch)
    fx.check_metric_weights(["hpsv21_masked", "clip_score"], "real", tmp_path)


def test_the_weights_check_imports_the_preference_networks_only_when_asked_for(tmp_path, monkeypatch):
    import sys

    import evalsuite.metrics

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _hub(monkeypatch, True, tmp_path / "hf")
    (tmp_path / fx.INCEPTION_FILE).write_bytes(b"x")
    # make importing preference_nets fail: the check for other metrics must not need it
    monkeypatch.delattr(evalsuite.metrics, "preference_nets", raising=False)
    monkeypatch.setitem(sys.modules, "evalsuite.metrics.preference_nets", None)
    fx.check_metric_weights(["latency", "fid"], "real", tmp_path)
    fx.check_metric_weights(["pickscore"], "random", tmp_path)
    with pytest.raises(ImportError):
        fx.check_metric_weights(["pickscore"], "real", tmp_path)


@pytest.mark.parametrize("name", ["aesthetic", "pickscore", "hpsv21", "imagereward"])
def test_a_file_with_the_wrong_sha256_is_refused(tmp_path, name):
    """Every pinned file (the aesthetic head; the hub files PickScore, HPS v2.1, ImageReward): a file
    with other bytes is refused before scoring, naming the expected digest and the fetch command."""
    wf = pn.WEIGHT_FILES[name][0]
    assert wf.sha256 is not None
    (tmp_path / wf.path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / wf.path).write_bytes(b"not the published file")
    with pytest.raises(ValueError, match=f"expected {wf.sha256}.*hf download|expected {wf.sha256}.*curl"):
        pn.locate(wf, tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        pn.check_files([name], "real", tmp_path)


def test_a_file_with_the_pinned_sha256_loads_and_unpinned_files_record_their_digest(tmp_path):
    torch.manual_seed(0)
    head = pn.RegressionHead()
    from safetensors.torch import save_file

    p = tmp_path / "head.safetensors"
    save_file(head.state_dict(), str(p))
    import hashlib

    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    pinned = dataclasses.replace(pn.AESTHETIC_FILE, path="head.safetensors", sha256=digest)
    assert pn.locate(pinned, tmp_path) == p
    loaded = pn.RegressionHead()
    loaded.load_state_dict(pn._state(p))
    assert all(
        torch.equal(a, b)
        for a, b in zip(head.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    assert pn.weights_record(pinned, p)["sha256_verified"] is True
    unpinned = dataclasses.replace(pinned, sha256=None)
    assert pn.weights_record(unpinned, p) == {
        "file": "head.safetensors",
        "sha256": digest,
        "sha256_verified": False,
    }


def test_bert_vocab_is_not_pinned_and_its_digest_is_recorded(tmp_path):
    """BERT's vocab.txt is a plain git file with no published digest: not pinned (never guessed),
    loaded unverified, its sha256 recorded beside the numbers."""
    import hashlib

    assert pn.BERT_VOCAB_FILE.sha256 is None
    p = tmp_path / pn.BERT_VOCAB_FILE.path
    p.parent.mkdir(parents=True)
    p.write_text("[PAD]\n[UNK]\nhello\n")
    assert pn.locate(pn.BERT_VOCAB_FILE, tmp_path) == p
    assert pn.weights_record(pn.BERT_VOCAB_FILE, p) == {
        "file": pn.BERT_VOCAB_FILE.path,
        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "sha256_verified": False,
    }


def test_hps_checkpoint_layout_is_read_weights_only(tmp_path):
    """HPS_v2.1_compressed.pt holds ``{'state_dict': ...}`` (DDP ``module.`` prefixes possible, fp16)."""
    model = pn._open_clip_model("ViT-H-14", "random", seed=5)
    sd = {"module." + k: v.half() for k, v in model.state_dict().items()}
    p = tmp_path / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": sd, "epoch": 1}, p)
    got = pn._state(p)
    other = pn._open_clip_model("ViT-H-14", "random", seed=6)
    other.load_state_dict({k: v.float() for k, v in got.items()})
    assert all(
        torch.equal(a.half().float(), b)
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True)
    )


def _blip_names(model: pn._BlipReward) -> dict[str, torch.Tensor]:
    """The tiny model's parameters under BLIP's own names (vit.py / med.py of THUDM/ImageReward)."""
    out: dict[str, torch.Tensor] = {}
    vis = {
        "embeddings.class_embedding": "cls_token",
        "embeddings.position_embedding": "pos_embed",
        "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
        "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
        "post_layernorm.weight": "norm.weight",
        "post_layernorm.bias": "norm.bias",
    }
    blk = {
        "layer_norm1": "norm1",
        "layer_norm2": "norm2",
        "self_attn.qkv": "attn.qkv",
        "self_attn.projection": "attn.proj",
    }
    for k, v in model.vision.state_dict().items():
        if k in vis:
            name = vis[k]
        else:
            _, _, i, rest = k.split(".", 3)
            mod, p = rest.rsplit(".", 1)
            name = f"blocks.{i}.{blk.get(mod, mod)}.{p}"
        out["blip.visual_encoder." + name] = v.clone()
    for k, v in model.text.state_dict().items():
        out["blip.text_encoder." + k] = v.clone()
    for k, v in model.head.state_dict().items():
        out["mlp." + k] = v.clone()
    out["blip.vision_proj.weight"] = torch.zeros(4, 32)
    out["blip.text_proj.weight"] = torch.zeros(4, 32)
    return out


def test_imagereward_checkpoint_keys_map_onto_the_transformers_blip_models():
    src = pn._BlipReward("random")
    blip = _blip_names(src)
    assert "blip.visual_encoder.blocks.1.attn.qkv.weight" in blip
    assert "blip.text_encoder.encoder.layer.1.crossattention.self.key.weight" in blip
    vis, txt, head = pn.imagereward_state(blip)
    torch.manual_seed(99)
    dst = pn._BlipReward("random")
    dst.vision.load_state_dict(vis)  # strict: every parameter mapped, none left over
    dst.text.load_state_dict(txt)
    dst.head.load_state_dict(head)
    for a, b in ((src.vision, dst.vision), (src.text, dst.text), (src.head, dst.head)):
        assert all(
            torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        )


def _reference_imagereward():
    """ImageReward's own BLIP modules (``THUDM/ImageReward``: ``models/BLIP/vit.py``, ``med.py``) from
    the ``image-reward`` wheel or a checkout (:func:`_reference_root`). The package cannot be
    installed beside our pins (it pins timm==0.6.13 and fairscale, imports diffusers/datasets at the top); so
    its package ``__init__``s are skipped, ``fairscale``'s checkpoint wrapper is an identity (it is
    off at inference), and the three ``PreTrainedModel`` helpers that transformers 5 dropped are
    restored with their old definitions. The model code itself runs unchanged."""
    import os
    import sys
    import types

    root = _reference_root("EVALSUITE_REF_IMAGEREWARD")
    import transformers.modeling_utils as mu
    import transformers.pytorch_utils as pu

    mu.apply_chunking_to_forward = pu.apply_chunking_to_forward
    mu.prune_linear_layer = pu.prune_linear_layer
    mu.find_pruneable_heads_and_indices = lambda *a, **k: None
    for name in ("fairscale", "fairscale.nn", "fairscale.nn.checkpoint"):
        sys.modules.setdefault(name, types.ModuleType(name))
    ck = types.ModuleType("fairscale.nn.checkpoint.checkpoint_activations")
    ck.checkpoint_wrapper = lambda m, **k: m  # type: ignore[attr-defined]
    sys.modules.setdefault(ck.__name__, ck)
    for pkg in ("ImageReward", "ImageReward/models", "ImageReward/models/BLIP"):
        mod = types.ModuleType(pkg.replace("/", "."))
        mod.__path__ = [os.path.join(root, pkg)]  # type: ignore[attr-defined]
        sys.modules.setdefault(mod.__name__, mod)
    from ImageReward.models.BLIP.med import BertConfig, BertModel
    from ImageReward.models.BLIP.vit import VisionTransformer

    BertModel.all_tied_weights_keys = {}
    BertModel.invert_attention_mask = lambda self, m: (
        (1.0 - m[:, None, None, :].float()) * torch.finfo(torch.float32).min
    )
    BertModel.get_head_mask = lambda self, head_mask, n: [None] * n
    return BertConfig, BertModel, VisionTransformer


def test_imagereward_equals_imagerewards_own_blip_modules_on_shared_random_weights():
    """Parity with ImageReward's ``score``: its BLIP ViT and BERT (med config) on our tiny sizes with
    random weights, its state-dict names mapped by :func:`imagereward_state`, the [CLS] output
    through the head and the published standardisation: equal within 1e-5 on the same input."""
    BertConfig, BertModel, VisionTransformer = _reference_imagereward()
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=2).eval()
    cfg = BertConfig(
        vocab_size=len(pn._TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        layer_norm_eps=1e-12,
        hidden_act="gelu",
        add_cross_attention=True,
        encoder_width=32,
        pad_token_id=0,
    )
    bert = BertModel(config=cfg, add_pooling_layer=False).eval()
    for mod in [*vit.modules(), *bert.modules()]:
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.normal_(mod.weight, std=0.3)
    head = pn.RegressionHead((32, 32, 16, 8, 4, 1)).eval()
    sd = {
        **{"blip.visual_encoder." + k: v for k, v in vit.state_dict().items()},
        **{"blip.text_encoder." + k: v for k, v in bert.state_dict().items()},
        **{"mlp." + k: v for k, v in head.state_dict().items()},
    }
    ours = pn._BlipReward("random").eval()
    vis, txt, hd = pn.imagereward_state(sd)
    ours.vision.load_state_dict(vis)
    ours.text.load_state_dict(txt)
    ours.head.load_state_dict(hd)
    net = pn.PrefNet(
        "imagereward",
        {"blip": ours},
        pn.bert_tokenizer({t: i for i, t in enumerate(pn._TINY_VOCAB)}),
        pn.Preprocess(32),
        "test",
        False,
    )
    x = torch.randn(3, 3, 32, 32)
    tok = net.tokenize(PROMPTS[:3])
    with torch.no_grad():
        emb = vit(x)
        out = bert(
            tok["input_ids"],
            attention_mask=tok["attention_mask"],
            encoder_hidden_states=emb,
            encoder_attention_mask=torch.ones(emb.shape[:-1], dtype=torch.long),
            return_dict=True,
        )
        want = (
            head(out.last_hidden_state[:, 0, :].float()).squeeze(-1) - 0.16717362830052426
        ) / 1.0333394966054072
    got = pn.imagereward_scores(net, x, PROMPTS[:3])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert float(want.max() - want.min()) > 1e-3  # the prompts/images matter: not a constant


# ---------------------------------------------------------------------------------------------
# full-size architectures (built on the meta device: no memory, no weights)
def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.slow
def test_random_full_builds_the_published_architectures():
    with torch.device("meta"):
        hps = pn._open_clip_model("ViT-H-14", "random_full", seed=0, device="meta")
        from transformers import CLIPModel

        pick = CLIPModel(pn.pickscore_config("random_full"))
        ir = pn._BlipReward("random_full")
        head = pn.RegressionHead()
    # open_clip ViT-H-14 and its transformers port have the same parameters (986.1 M + logit scale)
    assert 985e6 < _params(hps) < 987e6
    assert _params(pick) == _params(hps)
    vc, tc = pn.imagereward_configs("random_full")
    assert (vc.hidden_size, vc.num_hidden_layers, vc.patch_size, vc.image_size) == (1024, 24, 16, 224)
    assert (tc.hidden_size, tc.num_hidden_layers, tc.encoder_hidden_size, tc.vocab_size) == (
        768,
        12,
        1024,
        30524,
    )
    assert 300e6 < _params(ir.vision) < 310e6  # BLIP ViT-L/16
    assert _params(head) == 768 * 1024 + 1024 + 1024 * 128 + 128 + 128 * 64 + 64 + 64 * 16 + 16 + 16 + 1
    cfg = pick.config
    assert (cfg.vision_config.hidden_size, cfg.vision_config.num_hidden_layers, cfg.projection_dim) == (
        1280,
        32,
        1024,
    )


# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_evalsuite_score_writes_the_preference_metrics_per_image_and_in_the_summary(tmp_path, monkeypatch):
    import json

    import pandas as pd

    import evalsuite
    from evalsuite.cli.main import main
    from tests._metric_runners import register, write_configs
    from tests.conftest import write_dataset

    register()
    rows = [
        {
            "id": f"c{i}",
            "prompt": f"a red apple {i}",
            "image": f"img/{i}.png",
            "mask": f"mask/{i}.png",
            "seed": i,
        }
        for i in range(3)
    ]
    ds = write_dataset(tmp_path / "ds", rows)
    monkeypatch.setenv("EVALSUITE_CACHE_DIR", str(tmp_path / "cache"))
    res = evalsuite.run(
        configs=["noise-inp"],
        dataset=str(ds),
        config_dirs=[write_configs(tmp_path / "cfg")],
        out=tmp_path / "out",
        progress=False,
        metrics=["latency"],
    )
    names = ["aesthetic", "pickscore_masked", "hpsv21", "imagereward_masked"]
    assert main(["score", str(res.run_dir), "--metrics", *names]) == 0
    df = pd.read_parquet(res.run_dir / "samples.parquet")
    ok = df[df.status == "ok"]
    assert len(ok) == 3 and all(ok[n].notna().all() for n in names)
    m = json.loads((res.run_dir / "run.json").read_text())["summary"]["noise-inp"]["metrics"]
    for n in names:
        assert m[n]["n"] == 3 and m[n]["higher_is_better"] is True and m[n]["quality_evidence"] is False
        assert m[n]["metric_weights"] == "random"
