import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.generators import PromptGenerator, pooling_bins


def _build(kind: str, hidden: int, n: int = 5, **extra) -> PromptGenerator:
    params = Params({"type": kind, **extra})
    return PromptGenerator.from_params(params, hidden_size=hidden, prompt_length=n, default_dropout=0.1)


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# Hidden sizes of the published configs: roberta-large 1024, gpt2-large 1280 (n_embd).
@pytest.mark.parametrize(
    "kind,hidden,expected",
    [
        ("npg", 1024, 791_680),
        ("mppg", 1024, 263_296),
        ("appg", 1024, 263_296),
        ("npg", 1280, 989_568),
        ("mppg", 1280, 329_088),
        ("appg", 1280, 329_088),
    ],
)
def test_trainable_parameter_counts_match_the_paper(kind, hidden, expected):
    assert _trainable(_build(kind, hidden, bottleneck=128)) == expected


def test_static_prompt_is_n_by_h():
    assert _trainable(_build("static", 1024)) == 5 * 1024


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 7, 11, 16])
@pytest.mark.parametrize("bins", [1, 3, 5])
def test_pooling_bins_match_torch_adaptive_pooling_on_the_unpadded_sequence(length, bins):
    torch.manual_seed(0)
    total = 16
    x = torch.randn(1, total, 4)
    mask = torch.zeros(1, total, dtype=torch.bool)
    mask[0, :length] = True
    member = pooling_bins(mask, bins)
    maxed = x[:, None].masked_fill(~member[..., None], float("-inf")).amax(2)
    averaged = torch.bmm(member.float(), x) / member.sum(2, keepdim=True)
    real = x[:, :length].transpose(1, 2)
    torch.testing.assert_close(maxed, torch.nn.AdaptiveMaxPool1d(bins)(real).transpose(1, 2))
    torch.testing.assert_close(averaged, torch.nn.AdaptiveAvgPool1d(bins)(real).transpose(1, 2))


@pytest.mark.parametrize("kind", ["mppg", "appg"])
def test_padding_never_enters_a_pooling_bin(kind):
    torch.manual_seed(0)
    generator = _build(kind, 8, n=3).eval()
    states = torch.randn(1, 6, 8)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    anchor = torch.zeros(1, dtype=torch.long)
    reference = generator(states, mask, anchor)
    states[0, 4:] = 1e4  # garbage in the padding
    torch.testing.assert_close(generator(states, mask, anchor), reference)
    alone = generator(states[:, :4], mask[:, :4], anchor)
    torch.testing.assert_close(alone, reference)


def test_npg_reads_only_the_anchor_token():
    torch.manual_seed(0)
    generator = _build("npg", 8, n=2).eval()
    states = torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    anchor = torch.tensor([0, 3])
    reference = generator(states, mask, anchor)
    changed = states.clone()
    changed[0, 1:] = 0.0
    changed[1, :3] = 0.0
    torch.testing.assert_close(generator(changed, mask, anchor), reference)
    assert reference.shape == (2, 2, 8)


@pytest.mark.parametrize("kind", ["npg", "mppg", "appg"])
def test_dropout_defaults_to_the_backbone_and_can_be_set(kind):
    assert _build(kind, 8).dropout.p == 0.1
    assert _build(kind, 8, dropout=0.3).dropout.p == 0.3


@pytest.mark.parametrize(
    "kind,extra,message",
    [
        ("npg", {"bottleneck": 0}, "bottleneck=0"),
        ("appg", {"dropout": 1.5}, "dropout=1.5"),
    ],
)
def test_bad_generator_settings_are_configuration_errors(kind, extra, message):
    with pytest.raises(ConfigurationError, match=message):
        _build(kind, 8, **extra)


def test_prompt_length_below_one_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="prompt_length=0"):
        _build("npg", 8, n=0)


def test_unknown_generator_type_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="nope"):
        _build("nope", 8)
