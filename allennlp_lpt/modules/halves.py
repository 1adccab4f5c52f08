"""
The two roles of a late-prompt backbone split at its prompt layer: the lower half (layers 1..k,
the `late_prompt_transformer` embedder) and the upper half (the prompt, then layers k+1..L: the
late-prompt encoders). A model is sound only when one of each, describing the same split, meet.

These are marker bases, depending on neither side, so that `modules.pairing` can recognise the
halves in a model while the components themselves import nothing of the pairing rules.
"""


class LatePromptHalf:
    """
    What each half says about the split it belongs to; both halves of a model must agree.

    # Attributes

    model_name : `str`
        The backbone's HuggingFace folder or hub name.
    prompt_layer : `int`
        How many backbone layers run below the prompt (k).
    backbone_dtype : `str`
        The dtype the frozen backbone is stored in (`"float32"`, `"bfloat16"` or `"float16"`).
    """

    model_name: str
    prompt_layer: int
    backbone_dtype: str


class LowerHalf(LatePromptHalf):
    """The half below the prompt: it outputs the layer-`prompt_layer` states, which only an
    `UpperHalf` of the same split can continue."""


class UpperHalf(LatePromptHalf):
    """The half from the prompt up: it continues from a `LowerHalf`'s layer-`prompt_layer`
    states (final states would run the upper layers a second time)."""
