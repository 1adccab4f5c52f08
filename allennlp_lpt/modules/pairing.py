"""
Checks, at construction, that a late-prompt encoder sits on top of a matching embedder.

A `basic_classifier` config builds its text field embedder before its Seq2VecEncoder, and the
two only meet inside the model, which is AllenNLP's own. The embedder therefore announces
itself here when it is built, and the next late-prompt encoder built claims it and compares
model, prompt layer and family, so a mismatch is a ConfigurationError before training starts.
"""
import weakref
from typing import Optional, Protocol

from allennlp.common.checks import ConfigurationError


class _Half(Protocol):
    model_name: str
    prompt_layer: int


_unclaimed_lower: Optional["weakref.ReferenceType[_Half]"] = None


def announce_lower(embedder: _Half) -> None:
    """Called by the late-prompt embedder once it is built."""
    global _unclaimed_lower
    _unclaimed_lower = weakref.ref(embedder)


def claim_lower(encoder: _Half, *, encoder_type: str) -> None:
    """
    Called by a late-prompt encoder once it is built: compares it with the embedder built just
    before it (if any is still unclaimed) and raises a ConfigurationError on any disagreement.
    """
    global _unclaimed_lower
    lower = _unclaimed_lower() if _unclaimed_lower is not None else None
    _unclaimed_lower = None
    if lower is None:
        return
    check_pair(lower, encoder, encoder_type=encoder_type)


def check_pair(lower: _Half, upper: _Half, *, encoder_type: str) -> None:
    """Raises a ConfigurationError unless both halves describe the same split of one backbone."""
    problems = []
    if lower.model_name != upper.model_name:
        problems.append(
            f"model_name: the embedder loads {lower.model_name!r} but the encoder "
            f"{upper.model_name!r}"
        )
    if lower.prompt_layer != upper.prompt_layer:
        problems.append(
            f"prompt_layer: the embedder stops after layer {lower.prompt_layer} but the encoder "
            f"starts after layer {upper.prompt_layer}"
        )
    if problems:
        raise ConfigurationError(
            f"The late_prompt_transformer embedder and the {encoder_type} encoder disagree: "
            + "; ".join(problems)
            + ". Give both the same model_name and prompt_layer (a jsonnet local shared by both "
            "keeps them equal)."
        )
