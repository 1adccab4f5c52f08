"""`compile: true`: the stacks run through torch.compile, give the eager result, and compile a
bounded number of times: never again for a shape already seen, a few times for bucketed lengths."""
from typing import List

import pytest
import torch
from torch._dynamo import register_backend

from allennlp_lpt.core import LowerStack, UpperStack

COMPILED: List[int] = []


@register_backend
def lpt_counting(graph_module, example_inputs):
    """A backend that runs the captured graph as it is and counts compilations."""
    COMPILED.append(len(example_inputs))
    return graph_module.forward


def _batch(length: int, vocab: int = 300):
    torch.manual_seed(length)
    ids = torch.randint(5, vocab, (2, length))
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, length - 2:] = False
    return ids, mask


@pytest.mark.parametrize("family", ["roberta", "llama"])
def test_compiled_stacks_equal_eager_and_recompile_a_bounded_number_of_times(tiny_models, family):
    torch._dynamo.reset()
    COMPILED.clear()
    eager_lower, eager_upper = LowerStack(tiny_models[family], 2).eval(), UpperStack(tiny_models[family], 2).eval()
    lower, upper = LowerStack(tiny_models[family], 2).eval(), UpperStack(tiny_models[family], 2).eval()
    lower.compile(backend="lpt_counting")
    upper.compile(backend="lpt_counting")
    prompt = torch.randn(2, 3, lower.hidden_size)
    for length in (9, 9, 12, 12, 16, 9, 20, 16):  # bucketed lengths, each seen more than once
        ids, mask = _batch(length)
        states = lower(ids, mask)
        torch.testing.assert_close(states, eager_lower(ids, mask))
        torch.testing.assert_close(upper(states, mask, prompt), eager_upper(states, mask, prompt))
    # A static graph for the first length, a dynamic one at the second; nothing after.
    assert len(COMPILED) <= 4, COMPILED
    before = len(COMPILED)
    for _ in range(3):  # the same shapes again: no recompilation
        ids, mask = _batch(12)
        upper(lower(ids, mask), mask, prompt)
    assert len(COMPILED) == before


def test_the_components_option_compiles_both_stacks(tiny_models):
    from allennlp.common import Params
    from allennlp.modules import Seq2VecEncoder, TokenEmbedder

    torch._dynamo.reset()
    COMPILED.clear()
    embedder = TokenEmbedder.from_params(Params({
        "type": "late_prompt_transformer", "model_name": tiny_models["roberta"], "prompt_layer": 2,
        "compile": True, "compile_backend": "lpt_counting"}))
    encoder = Seq2VecEncoder.from_params(Params({
        "type": "late_prompt_roberta", "model_name": tiny_models["roberta"], "prompt_layer": 2,
        "compile": True, "compile_backend": "lpt_counting"}))
    ids, mask = _batch(10)
    pooled = encoder(embedder(ids, mask), mask)
    (pooled * torch.randn_like(pooled)).sum().backward()  # gradients flow through the compiled upper stack
    assert all(p.grad is not None for p in encoder.generator.parameters())
    assert len(COMPILED) >= 2
