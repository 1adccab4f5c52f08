"""
Checks that a model's late-prompt halves belong together: a `late_prompt_transformer` embedder
feeding a late-prompt encoder of the same model, prompt layer and backbone dtype, and nothing
else on either side.

The halves are recognised by their roles (`modules.halves`), so this module imports neither
component. `check_model` runs on a whole model when it is built: AllenNLP's models
(`basic_classifier`, ...) apply their `initializer` to themselves at the end of their
constructors, and `allennlp_lpt.compat` runs the check there; `late_prompt_classifier`, which
receives both halves, checks them itself (`check_pair`). A model class of one's own that applies
no initializer calls `check_model(self)` at the end of its constructor.
"""
from typing import Dict, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.registrable import Registrable
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_lpt.modules.halves import LatePromptHalf, LowerHalf, UpperHalf


def check_pair(
    lower: LatePromptHalf,
    upper: LatePromptHalf,
    *,
    lower_key: str = "the late_prompt_transformer embedder",
    upper_key: str = "the encoder",
) -> None:
    """
    Raises a ConfigurationError unless both halves describe the same split of one backbone.

    # Parameters

    lower : `LatePromptHalf`
        The half below the prompt (the embedder).
    upper : `LatePromptHalf`
        The half from the prompt up (the encoder).
    lower_key : `str`, optional
        How the message names `lower`: its config key where it is known.
    upper_key : `str`, optional
        How the message names `upper`.
    """
    problems = []
    if lower.model_name != upper.model_name:
        problems.append(
            f"model_name: {lower_key} loads {lower.model_name!r} but {upper_key} "
            f"{upper.model_name!r}"
        )
    if lower.prompt_layer != upper.prompt_layer:
        problems.append(
            f"prompt_layer: {lower_key} stops after layer {lower.prompt_layer} but {upper_key} "
            f"starts after layer {upper.prompt_layer}"
        )
    if lower.backbone_dtype != upper.backbone_dtype:
        problems.append(
            f"backbone_dtype: {lower_key} stores the backbone in {lower.backbone_dtype} but "
            f"{upper_key} in {upper.backbone_dtype}"
        )
    if problems:
        raise ConfigurationError(
            f"{lower_key} and {upper_key} disagree: " + "; ".join(problems)
            + ". Give both the same model_name, prompt_layer and backbone_dtype (a jsonnet local "
            "shared by both keeps them equal)."
        )


def config_key(module_path: str) -> str:
    """The config key of a submodule, from its attribute path: `_text_field_embedder.
    token_embedder_tokens` -> `model.text_field_embedder.token_embedders.tokens`."""
    parts = [part for part in module_path.split(".") if part]
    if parts and parts[0] == "module":  # DistributedDataParallel's wrapper
        parts = parts[1:]
    keys = []
    for part in parts:
        part = part.lstrip("_")
        if part.startswith("token_embedder_"):
            keys.extend(["token_embedders", part[len("token_embedder_"):]])
        else:
            keys.append(part)
    return ".".join(["model"] + keys)


def registered_name(module: torch.nn.Module) -> str:
    """The name(s) `module`'s class is registered under (its class name where it is not)."""
    for base in type(module).__mro__:
        registry = Registrable._registry.get(base)  # type: ignore[attr-defined]
        names = [name for name, (cls, _) in (registry or {}).items() if cls is type(module)]
        if names:
            return " / ".join(sorted(names))
    return type(module).__name__


Found = List[Tuple[str, torch.nn.Module]]


def find_halves(root: torch.nn.Module) -> Tuple[Found, Found, Found]:
    """(path, module) of every lower half (late-prompt embedder), every upper half (late-prompt
    encoder), and every other token embedder (outermost only) in `root`."""
    embedders: Found = []
    encoders: Found = []
    others: Found = []
    for path, child in root.named_modules():
        if isinstance(child, LowerHalf):
            embedders.append((path, child))
        elif isinstance(child, UpperHalf):
            encoders.append((path, child))
        elif isinstance(child, TokenEmbedder) and not any(
            path.startswith(inner + ".") for inner, _ in others
        ):
            others.append((path, child))
    return embedders, encoders, others


def check_model(root: torch.nn.Module) -> None:
    """
    Raises a ConfigurationError, naming the config keys, when the late-prompt halves in `root`
    do not pair up: an encoder with no `late_prompt_transformer` embedder in front (another
    embedder would hand it final states, and it would run the upper layers a second time), an
    embedder whose layer-k states go to any other encoder, or two halves of different models,
    prompt layers or backbone dtypes.

    # Parameters

    root : `torch.nn.Module`
        The whole model, built: its submodules' attribute paths become the config keys named.
    """
    embedders, encoders, others = find_halves(root)
    if not embedders and not encoders:
        return
    problem = _unpaired(root, embedders, encoders, others)
    if problem is not None:
        raise ConfigurationError(problem)
    (lower_path, lower), (upper_path, upper) = embedders[0], encoders[0]
    check_pair(lower, upper, lower_key=config_key(lower_path), upper_key=config_key(upper_path))  # type: ignore[arg-type]


def _unpaired(root: torch.nn.Module, embedders: Found, encoders: Found, others: Found) -> Optional[str]:
    """What keeps the halves found in `root` from being one embedder and one encoder in front
    of each other, or None."""
    described: Dict[str, str] = {
        config_key(path): registered_name(child) for path, child in embedders + encoders + others
    }

    def name(path: str) -> str:
        key = config_key(path)
        return f"{key} ({described[key]})"

    if encoders and (not embedders or others):
        found = ", ".join(name(path) for path, _ in others) or "no token embedder"
        return (
            f"{name(encoders[0][0])} continues from the layer-k states of a "
            f"late_prompt_transformer embedder, but the model's token embedders are: {found}. "
            f"Make the text field embedder hold exactly one token embedder of type "
            f"late_prompt_transformer with the encoder's model_name and prompt_layer."
        )
    if embedders and not encoders:
        consumers = [
            f"{config_key(path)} ({registered_name(child)})"
            for path, child in root.named_children()
            if "encoder" in path
        ]
        return (
            f"{name(embedders[0][0])} outputs the states of a middle layer, which only a "
            f"late-prompt encoder (late_prompt_roberta, late_prompt_gpt2, late_prompt_causal) "
            f"can continue; the model's encoder is "
            f"{', '.join(consumers) or 'not a late-prompt encoder'}. Use a late-prompt encoder "
            f"with the same model_name and prompt_layer, or AllenNLP's pretrained_transformer "
            f"embedder for the final states."
        )
    if len(embedders) != 1 or len(encoders) != 1:
        return (
            "a model holds exactly one late_prompt_transformer embedder and one late-prompt "
            f"encoder; found {', '.join(name(path) for path, _ in embedders + encoders)}."
        )
    return None
