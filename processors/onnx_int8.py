"""int8 NER inference on CPU through ONNX Runtime.

Why not torch's own dynamic quantization: on a 2-core AMD EPYC with AVX2 it ran 1.04x fp32 and cost 3.2 devel
F1 points (README, 2026-11). ONNX Runtime's int8 MatMuls with per-channel weight scales ran 1.36x torch's fp32
end to end on a 2-core Xeon with AVX-512 VNNI and, exported as below, 2.8x on a 2-core AVX-512 EPYC (201
notes/s), for no F1 loss (-0.15 points on all of devel; bench/ner_bench.py). It is not the default: dynamic
quantization scales each MatMul's activations by the whole batch's range, so a note's entities depend on the
notes batched with it (5% of entities differed between batches of 32 and one note at a time).

The fp32 model is exported with torch's dynamo exporter (the TorchScript exporter traced transformers 5's
attention masks wrongly: logits off by up to 4), quantized once and cached by model version and library
versions, so a worker start after the first is a file load.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxTokenClassifier:
    """Called like a transformers token classifier: `(input_ids=, attention_mask=) -> .logits` (CPU tensors)."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.path = path
        # ONNX Runtime's fused SkipLayerNormalization ran slower than the Add and LayerNormalization it replaces:
        # without the fusion the int8 model ran 1.19x on a 2-core AVX-512 EPYC (one thread, median of 12 runs)
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
        )

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(None, feeds)[0]))


def cache_key(model_version: str) -> str:
    import onnxruntime

    # "eager": the export recipe (attention without scaled_dot_product_attention, below); a new recipe, a new twin
    return f"{model_version}-torch{torch.__version__.split('+')[0]}-ort{onnxruntime.__version__}-eager-int8"


def int8_classifier(model: torch.nn.Module, model_version: str, cache_dir: Path, threads: int) -> OnnxTokenClassifier:
    """The int8 ONNX Runtime twin of an fp32 token classifier, built on first use and cached in `cache_dir`."""
    path = Path(cache_dir) / f"{cache_key(model_version)}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_int8(model, path)
        prune_superseded(path)
    return OnnxTokenClassifier(path, threads)


_VERSIONED = re.compile(r"(?P<name>.+)-\d{4}\.\d{2}\.\d{2}-[0-9a-f]{12}-torch.+-int8\.onnx")


def prune_superseded(current: Path) -> None:
    """Delete the twins of the same model's other versions (or other torch / ONNX Runtime versions) beside
    `current`: each is 23 MB and a retrained model never loads them again. Other models' twins stay."""
    match = _VERSIONED.fullmatch(current.name)
    if match is None:
        return
    for twin in current.parent.glob("*-int8.onnx"):
        other = _VERSIONED.fullmatch(twin.name)
        if twin != current and other is not None and other["name"] == match["name"]:
            twin.unlink(missing_ok=True)


def export_int8(model: torch.nn.Module, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    batch, width = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("tokens", min=2, max=512)
    # a padded example: with an all-ones mask the exported graph dropped the attention mask altogether
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (3, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 17:] = 0
    mask[2, 9:] = 0
    ids = ids * mask
    # Plain attention (matmul, mask added, softmax): the exported scaled_dot_product_attention guards its
    # masked rows with IsNaN/Where nodes that took 12% of the int8 forward pass; eager ran 1.06x (one
    # thread) to 1.15x (two) on a 2-core AVX-512 EPYC, with the same logits in fp32
    model = copy.deepcopy(model).float().eval()
    model.set_attn_implementation("eager")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, _quiet():
        fp32 = Path(tmp) / "fp32.onnx"
        program = torch.onnx.export(
            Logits(model).eval(), (ids, mask), dynamo=True, optimize=True, verbose=False,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_shapes={"input_ids": {0: batch, 1: width}, "attention_mask": {0: batch, 1: width}},
        )
        program.save(str(fp32))
        _check_export(model, fp32, ids, mask)
        int8 = Path(tmp) / "int8.onnx"
        # per-channel weight scales: per-tensor int8 cost 1.4 F1 points, per-channel 0.3 (devel, 800 sentences)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(int8, path)  # atomic: another process loading the cache sees the whole file or none


def _check_export(model: torch.nn.Module, path: Path, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """The exported fp32 graph must give torch's logits on real tokens: a wrong export is silent otherwise."""
    exported = OnnxTokenClassifier(path, threads=1)(input_ids=ids[:, :20], attention_mask=mask[:, :20]).logits
    with torch.inference_mode():
        expected = model(input_ids=ids[:, :20], attention_mask=mask[:, :20]).logits
    worst = float((exported - expected)[mask[:, :20].bool()].abs().max())
    if worst > 1e-3:
        raise RuntimeError(f"ONNX export of the NER model disagrees with torch (max logit difference {worst:.3g})")


@contextlib.contextmanager
def _quiet():
    """The exporter prints its progress and warns (optional torchvision ops, axis names), and the quantizer
    warns on the root logger about optional pre-processing; none of it is news in a worker's log."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
