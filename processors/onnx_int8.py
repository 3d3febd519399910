"""int8 NER inference on CPU through ONNX Runtime.

Why not torch's own dynamic quantization: on a 2-core AMD EPYC with AVX2 it ran 1.04x fp32 and cost 3.2 devel
F1 points (README, 2026-11). ONNX Runtime's int8 MatMuls with per-channel weight scales ran 1.36x torch's fp32
end to end on a 2-core Xeon with AVX-512 VNNI and, exported as below, 2.8x on a 2-core AVX-512 EPYC (201
notes/s), for no F1 loss (-0.15 points on all of devel; bench/ner_bench.py). ONNX Runtime's dynamic
quantization scales each MatMul's activations by the whole batch's range, so a note's entities depended on the
notes batched with it (5% of entities differed between batches of 32 and one note at a time). quantize_rows
gives each token its own scale and zero point: a note's logits are the same in any batch, and closer to fp32's
(devel F1 0.8587, fp32's, against 0.8572 with one scale per batch; 1.9% of the entities of 256 clinical notes
differ from fp32's, against 5.0%), for about 0.8x the speed of one scale per batch.

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
        # without the fusion the int8 model ran 1.19x on a 2-core AVX-512 EPYC (one thread, median of 12 runs).
        # Its MatMulIntegerToFloat fusion takes per-row activation scales without a word and gets them wrong (1.32,
        # on a symmetric variant of quantize_rows: tokens whose label agreed with fp32 fell from 99.7% to 90.7%).
        # quantize_rows' zero-point correction keeps the pattern from matching; the fusion stays off all the same
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"],
            disabled_optimizers=["SkipLayerNormFusion", "MatMulIntegerToFloatFusion"],
        )

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(None, feeds)[0]))


def cache_key(model_version: str) -> str:
    import onnxruntime

    # the export recipe: "eager" attention (no scaled_dot_product_attention), activations quantized by "rows"; a new
    # recipe, a new twin
    return f"{model_version}-torch{torch.__version__.split('+')[0]}-ort{onnxruntime.__version__}-eager-rows-int8"


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
        quantize_rows(int8)
        os.replace(int8, path)  # atomic: another process loading the cache sees the whole file or none


def quantize_rows(path: Path) -> None:
    """Make each int8 MatMul quantize its activations row by row (token by token) instead of by the whole batch's
    range, so that a note's logits depend on the note alone, as in fp32. quantize_dynamic's DynamicQuantizeLinear
    picks one scale and zero point for the whole input tensor; each is replaced by ONNX's blocked QuantizeLinear
    (opset 21) with a scale and zero point per row, from the row's own min and max (0 included, as ONNX Runtime does
    for the whole tensor). ONNX Runtime's MatMulInteger takes one scalar zero point for its first input, so it gets
    0, and the zero points come off its output: (q - z) W = q W - z * colsum(W), colsum(W) a constant per output
    channel. The MatMul's output scale (activation scale times each channel's weight scale) broadcasts the row scales.

    Against a symmetric scale per row (zero point 128, no correction to make), which ran 1.1x this: 9.2% of the
    entities of 256 clinical notes differed from fp32's against 1.9% here (and 5.0% with one scale per batch)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype=d), name) for name, v, d in (
        ("rows_axes", [-1], np.int64), ("rows_zero", 0.0, np.float32), ("rows_inv255", 1 / 255, np.float32),
        ("rows_tiny", 1e-12, np.float32)))
    zero_points: dict[str, str] = {}  # quantized activation -> its zero points per row (float)
    corrections: dict[str, tuple[str, str]] = {}  # Cast of a MatMulInteger's output -> (zero points, colsum)
    nodes = []
    for node in graph.node:
        if node.op_type == "DynamicQuantizeLinear":
            x, (quantized, scale, zero_point) = node.input[0], node.output
            p = f"rows_{quantized}"
            nodes += [
                helper.make_node("ReduceMax", [x, "rows_axes"], [p + "_max"], keepdims=1),
                helper.make_node("ReduceMin", [x, "rows_axes"], [p + "_min"], keepdims=1),
                helper.make_node("Max", [p + "_max", "rows_zero"], [p + "_high"]),
                helper.make_node("Min", [p + "_min", "rows_zero"], [p + "_low"]),
                helper.make_node("Sub", [p + "_high", p + "_low"], [p + "_range"]),
                helper.make_node("Mul", [p + "_range", "rows_inv255"], [p + "_step"]),
                helper.make_node("Max", [p + "_step", "rows_tiny"], [scale]),  # an all-zero row: a scale > 0
                helper.make_node("Div", [p + "_low", scale], [p + "_low_steps"]),
                helper.make_node("Neg", [p + "_low_steps"], [p + "_zero_exact"]),
                helper.make_node("Round", [p + "_zero_exact"], [p + "_zero"]),
                helper.make_node("Cast", [p + "_zero"], [p + "_zero_u8"], to=TensorProto.UINT8),
                # one block along the last axis, as long as any row: a scale and zero point per row
                helper.make_node("QuantizeLinear", [x, scale, p + "_zero_u8"], [quantized], axis=-1, block_size=1 << 30),
            ]
            graph.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.uint8), zero_point))  # MatMulInteger's
            zero_points[quantized] = p + "_zero"
            continue
        if node.op_type == "MatMulInteger" and node.input[0] in zero_points:
            if node.input[1] not in weights or len(node.input) < 4 or node.input[3] not in weights:
                raise RuntimeError(f"int8 export: {node.name} has no constant weights and zero points")
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.int64)
            w_zero = numpy_helper.to_array(weights[node.input[3]]).astype(np.int64)
            colsum = f"rows_colsum_{node.output[0]}"
            graph.initializer.append(numpy_helper.from_array((w - w_zero).sum(axis=0).astype(np.float32), colsum))
            [cast] = consumers[node.output[0]]
            if cast.op_type != "Cast":
                raise RuntimeError(f"int8 export: {node.name} feeds a {cast.op_type}, not a Cast")
            corrections[cast.output[0]] = (zero_points[node.input[0]], colsum)
        nodes.append(node)
    corrected = []
    for node in nodes:
        corrected.append(node)
        if node.op_type == "Cast" and node.output[0] in corrections:
            out = node.output[0]
            zero, colsum = corrections[out]
            node.output[0] = out + "_uncorrected"
            corrected += [helper.make_node("Mul", [zero, colsum], [out + "_zero_terms"]),
                          helper.make_node("Sub", [out + "_uncorrected", out + "_zero_terms"], [out])]
    del graph.node[:]
    graph.node.extend(corrected)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, 21)  # blocked QuantizeLinear
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


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
