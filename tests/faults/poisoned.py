"""A stage process whose NER model raises on any batch holding the marker text: the poison record of the
fault suite. Everything else is the real stage (`python -m tests.faults.poisoned inference`); a normalizer
started this way is the plain one (it never imports the model, nor torch)."""

import sys

MARKER = "POISON-PILL"


def poison_the_ner_model() -> None:
    from processors.ner import NerModel

    predict = NerModel.predict

    def poisoned_predict(self, texts, *args, **kwargs):
        if any(MARKER in t for t in texts):
            raise RuntimeError("poison record")
        return predict(self, texts, *args, **kwargs)

    NerModel.predict = poisoned_predict


if __name__ == "__main__":
    from clinstream.cli import app

    if sys.argv[1:] == ["inference"]:
        poison_the_ner_model()
    sys.argv = ["clinstream", "worker", *sys.argv[1:]]
    app()
