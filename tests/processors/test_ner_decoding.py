"""Pure parts of NER: BIO-constrained Viterbi and token-budget grouping."""

from unittest import mock

import torch

from processors.ner import LABELS, allowed_transitions, padded_width, token_budget_groups, viterbi


def test_viterbi_forbids_o_to_i():
    """An I- tag never follows O: the best valid path is chosen instead."""
    allowed = allowed_transitions(LABELS)
    start = torch.tensor([not lab.startswith("I-") for lab in LABELS])
    # word 0 clearly O, word 1 prefers I-Disease (invalid after O), then B-Disease
    lp = torch.log(torch.tensor([[0.9, 0.025, 0.025, 0.025, 0.025], [0.05, 0.05, 0.05, 0.35, 0.5]]))
    path = [LABELS[i] for i in viterbi([lp], allowed, start)[0]]
    assert path == ["O", "B-Disease"]


def test_viterbi_of_a_batch_is_the_best_valid_path_of_each_sequence():
    """Sequences of different lengths decoded together each get the highest-scoring BIO-valid path, found here
    by trying every path (5 labels, up to 5 words); empty sequences give empty paths."""
    import itertools

    import numpy as np

    allowed = allowed_transitions(LABELS).numpy()
    start = np.array([not lab.startswith("I-") for lab in LABELS])
    rng = np.random.default_rng(7)
    batch = [np.log(rng.dirichlet(np.ones(5) * 0.5, size=n)) for n in (3, 1, 5, 0, 2, 5, 4, 1)]

    def best(lp: np.ndarray) -> list[int]:
        valid = [p for p in itertools.product(range(5), repeat=len(lp))
                 if start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:]))] if len(lp) else [()]
        return list(max(valid, key=lambda p: sum(lp[i, t] for i, t in enumerate(p))))

    assert viterbi(batch, allowed, start) == [best(lp) for lp in batch]
    assert viterbi([], allowed, start) == []


def test_token_budget_groups():
    """Groups respect both the batch size and the padded-token budget, and keep every window once."""
    lengths = [10, 200, 30, 200, 15, 60, 250]
    groups = token_budget_groups(lengths, max_batch=3, token_budget=420)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert len(g) <= 3 and padded_width(max(lengths[i] for i in g)) * len(g) <= 420 or len(g) == 1


def test_precision_defaults_and_limits():
    """auto is int8 on CPU where openvino and nncf are installed (its entities do not depend on the batch), else
    fp32; int8 is CPU-only and needs them; typos are refused."""
    import pytest

    from processors.ner import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "int8"
    with mock.patch("processors.openvino_int8.available", return_value=False):
        assert resolve_precision("auto", cpu) == "fp32"
    with mock.patch("processors.openvino_int8.available", return_value=False), pytest.raises(ValueError):
        resolve_precision("int8", cpu)
    assert resolve_precision("int8", cpu) == "int8"
    with pytest.raises(ValueError):
        resolve_precision("int8", torch.device("cuda"))
    with pytest.raises(ValueError):
        resolve_precision("fp8", cpu)


def test_padded_width_is_a_multiple_of_eight():
    """Forward passes are padded up to the next multiple of 8 tokens, never down."""
    assert [padded_width(n) for n in (1, 8, 9, 73, 256)] == [8, 8, 16, 80, 256]
