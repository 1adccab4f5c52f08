"""
Whole HuggingFace models run with the core's kernels: the methods compared with late prompt
(`peft_transformer`, the benchmark's peers) train a complete transformer, and give it the
attention and dropout that late prompt's stacks run, so that no method is slower for want of a
kernel another one has.
"""
from transformers import PreTrainedModel


def give_lean_modules(model: PreTrainedModel) -> None:
    """
    The HF model (one with a head, as `family.load_model` loads it) trains with the attention modules and
    the dropout that late prompt's stacks run (the family's lean SDPA attention over the same
    weights, the cheaper CPU dropout), and without a key/value cache nobody reads in training.
    Same computation, same results (tested), only the kernels differ. Modules are replaced in
    `model` itself: give it a `shared_copy` where its modules are shared.
    """
    from allennlp_lpt.core import family_for_config
    from allennlp_lpt.core.dropout import use_fast_dropout

    family = family_for_config(model.config, model.config.name_or_path)
    if family.lean_attention_fits_hf_layers:
        family.prepare_layers(family.layers(model), model.config)
        model.config.use_cache = False
    # Otherwise (Llama family) the model was loaded with HF's SDPA attention, the same kernel,
    # and keeps its cache switch: PEFT's prefix tuning passes its keys and values through it.
    use_fast_dropout(model)

