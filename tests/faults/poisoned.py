"""A stage process whose NER model raises on any batch holding the marker text: the poison record of the
fault suite. Everything else is the real worker (`python -m tests.faults.poisoned inference`)."""

import sys

from processors.ner import NerModel

MARKER = "POISON-PILL"
_predict = NerModel.predict


def _poisoned_predict(self, texts, *args, **kwargs):
    if any(MARKER in t for t in texts):
        raise RuntimeError("poison record")
    return _predict(self, texts, *args, **kwargs)


NerModel.predict = _poisoned_predict

if __name__ == "__main__":
    from clinstream.cli import app

    sys.argv = ["clinstream", "worker", *sys.argv[1:]]
    app()
