"""int8 NER inference on CPU through OpenVINO, with activation scales fixed at set-up.

Why static scales: a dynamic quantizer scales each MatMul's activations by the range it meets, and ONNX Runtime's
takes the range of the whole batch, so a note's entities depended on the notes batched with it (5% of entities
differed between batches of 32 and one note at a time). Scales calibrated once, on generator notes, make every
int8 product exact integer arithmetic with the same scales for every batch: a note gets the same logits alone or in
any batch. NNCF picks them (its transformer preset: which MatMuls and inputs to quantize, min-max ranges, bias
correction) and OpenVINO runs the result with VNNI int8 kernels.

Measured side by side on a 2-core AVX-512 EPYC (VNNI, BF16), batch 32 of 75-token notes, forward pass, median of
7: torch fp32 61, ONNX Runtime int8 with a scale per token (the CPU default before 2026-12-03) 137, OpenVINO bf16
165, OpenVINO static int8 258 notes/s. Devel F1 0.8576 against fp32's 0.8587 (ONNX Runtime per token 0.8587).

The fp32 model is exported with torch's dynamo exporter (the TorchScript exporter traced transformers 5's
attention masks wrongly: logits off by up to 4), quantized once and cached by model version and library
versions, so a worker start after the first is a file load.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

# No telemetry from a hospital's machine. `import openvino` sends a Google Analytics event (its model converter's
# "general_import") and NNCF sends usage events while quantizing, because openvino-telemetry takes a missing
# consent file as consent. Both fall back to their own no-op stubs when that package cannot be imported, so this
# process never imports it; openvino and nncf are imported only below, after this line.
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

# Calibration: the generator's notes, what the worker reads. Calibrated on them alone the twin scored devel F1
# 0.8572; on them and ICD-10-CM descriptions 0.8576; on 256 BC5CDR training sentences too 0.8578 (fp32 0.8587)
CALIBRATION_NOTES = 256
CALIBRATION_BATCH = 16


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("nncf", "onnx", "onnxscript", "openvino"))


class OpenVinoTokenClassifier:
    """Called like a transformers token classifier: `(input_ids=, attention_mask=) -> .logits` (CPU tensors).
    One inference request: call it from one thread at a time (the worker's model thread)."""

    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov

        self.path = path
        # f32 for what stays unquantized (LayerNorm, softmax, GELU): OpenVINO would take bf16 where the CPU has it,
        # as fast here, but then a CPU with bf16 and one without would label a note differently
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        logits = self.request.infer(feeds)[0]
        return SimpleNamespace(logits=torch.from_numpy(logits.copy()))  # the request reuses its output buffer


def cache_key(model_version: str) -> str:
    # the recipe: "eager" attention exported (no scaled_dot_product_attention), "static" int8; a new recipe, a new twin
    versions = f"torch{torch.__version__.split('+')[0]}-ov{metadata.version('openvino')}-nncf{metadata.version('nncf')}"
    return f"{model_version}-{versions}-eager-static-int8"


def int8_classifier(model: torch.nn.Module, tokenizer: Any, model_version: str, cache_dir: Path,
                    threads: int) -> OpenVinoTokenClassifier:
    """The int8 OpenVINO twin of an fp32 token classifier, built on first use and cached in `cache_dir`."""
    path = Path(cache_dir) / f"{cache_key(model_version)}.xml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_int8(model, calibration_inputs(tokenizer), path)
        prune_superseded(path)
    return OpenVinoTokenClassifier(path, threads)


_VERSIONED = re.compile(r"(?P<name>.+)-\d{4}\.\d{2}\.\d{2}-[0-9a-f]{12}-torch.+-int8\.(xml|bin|onnx)")


def prune_superseded(current: Path) -> None:
    """Delete the twins of the same model's other versions (or other library versions, or the ONNX Runtime twins
    of before 2026-12-03) beside `current`: each is 23 MB and a retrained model never loads them again. Other
    models' twins stay."""
    match = _VERSIONED.fullmatch(current.name)
    if match is None:
        return
    keep = {current.name, current.with_suffix(".bin").name}
    for twin in current.parent.glob("*-int8.*"):
        other = _VERSIONED.fullmatch(twin.name)
        if twin.name not in keep and other is not None and other["name"] == match["name"]:
            twin.unlink(missing_ok=True)


def calibration_inputs(tokenizer: Any) -> list[dict[str, Any]]:
    """Batches of the generator's clinical notes, tokenized as the worker tokenizes (padded, at most 256 tokens)."""
    from clinstream.synthetic import note_texts

    notes = note_texts(CALIBRATION_NOTES, seed=29)  # not the benchmark's notes (seed 11)
    batches = []
    for start in range(0, len(notes), CALIBRATION_BATCH):
        encoded = tokenizer(notes[start : start + CALIBRATION_BATCH], padding=True, truncation=True,
                            max_length=256, return_tensors="np")
        batches.append({"input_ids": encoded["input_ids"].astype("int64"),
                        "attention_mask": encoded["attention_mask"].astype("int64")})
    return batches


def export_int8(model: torch.nn.Module, calibration: Sequence[dict[str, Any]], path: Path) -> None:
    import nncf
    import openvino as ov

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
    # masked rows with IsNaN/Where nodes that took 12% of ONNX Runtime's int8 forward pass
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
        quantized = nncf.quantize(ov.Core().read_model(str(fp32)), nncf.Dataset(list(calibration)),
                                  subset_size=len(calibration), model_type=nncf.ModelType.TRANSFORMER)
        staged = Path(tmp) / "int8.xml"
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        # the weights first, then the graph: a process that finds the .xml finds its .bin whole
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)


def _check_export(model: torch.nn.Module, path: Path, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """The exported fp32 graph must give torch's logits on real tokens: a wrong export is silent otherwise."""
    exported = OpenVinoTokenClassifier(path, threads=0)(input_ids=ids[:, :20], attention_mask=mask[:, :20]).logits
    with torch.inference_mode():
        expected = model(input_ids=ids[:, :20], attention_mask=mask[:, :20]).logits
    worst = float((exported - expected)[mask[:, :20].bool()].abs().max())
    if worst > 1e-3:
        raise RuntimeError(f"ONNX export of the NER model disagrees with torch (max logit difference {worst:.3g})")


@contextlib.contextmanager
def _quiet():
    """The exporter prints its progress and warns (optional torchvision ops, axis names), and NNCF prints its
    progress bars and statistics tables; none of it is news in a worker's log."""
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
