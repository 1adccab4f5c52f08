"""
What a tuning method is. Each registered method lives in one file of this folder and carries
everything the package knows about it: how it is built (for `peft_transformer`, the PEFT ones),
its defaults (the constructor's) and their source, its search range, what it needs of a family,
and how a late-prompt config becomes a config of this method. `allennlp lpt-compare`'s swap,
`allennlp lpt-benchmark`'s peers and the table `allennlp lpt-methods` prints all read it from
here.
"""
import importlib
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Type

import torch
from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.option_types import TypedOptions

if TYPE_CHECKING:
    import peft

PEFT_FIX = "pip install -r requirements.txt (peft==0.21.2, the release pinned for transformers 5.24)"


def import_peft(key: str) -> ModuleType:
    """The `peft` module; where it is missing or does not import, a ConfigurationError naming
    the config key that asked for it and the fix."""
    try:
        return importlib.import_module("peft")
    except ImportError as error:
        raise ConfigurationError(
            f"{key}: this method is built on PEFT, which does not import here ({error}). "
            f"Fix: {PEFT_FIX}."
        ) from None


def at_least_one(value: int, key: str) -> int:
    """`value` where it is an int of 1 or more, else a ConfigurationError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{key}={value!r}: give an integer of 1 or more.")
    return value


def weight_module_names(model: torch.nn.Module) -> List[str]:
    """The distinct last names of the modules of `model` that hold a weight matrix (linear and
    GPT-2's Conv1D layers): what `target_modules` can name."""
    names = set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if name and isinstance(weight, torch.Tensor) and weight.dim() == 2 and not isinstance(module, torch.nn.Embedding):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def check_targets(
    model: torch.nn.Module, targets: Sequence[str], *, key: str, family: Type[BackboneFamily], model_name: str
) -> None:
    """Every entry of `targets` names a module of `model` the way PEFT matches them (the full
    dotted name or a dotted suffix of it); one that names none is a ConfigurationError listing
    the modules this family has."""
    names = [name for name, _ in model.named_modules() if name]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigurationError(
            f"{key}: {model_name!r} ({family.name} family) has no module named "
            f"{', '.join(map(repr, missing))}. Its weight modules are: "
            f"{', '.join(weight_module_names(model))}; a dotted suffix such as "
            f"'attention.output.dense' picks one among those of the same name."
        )


def frozen_base_embedder(
    method: Type["TuningMethod"], tokens: Dict[str, Any], options: Dict[str, Any]
) -> Dict[str, Any]:
    """The config of `method.component`, an embedder that keeps the model frozen and takes the
    method as its `method` (`peft_transformer`, `reft_transformer`), in place of the late-prompt
    embedder `tokens`: the same model, its frozen part stored as late prompt's."""
    embedder: Dict[str, Any] = {"type": method.component, "model_name": tokens["model_name"],
                                "method": {"type": method.name(), **options}}
    for key in ("backbone_dtype", "save_backbone"):
        if key in tokens:
            embedder[key] = tokens[key]
    return embedder


class TuningMethod(TypedOptions, Registrable):
    """
    A way of adapting a frozen pretrained model, as the comparison, the benchmark and the
    tables know it. A subclass in its own file of `allennlp_lpt/modules/tuning_methods/`,
    registered under its config name, is all a new method needs: the folder imports every file.

    Class attributes (read without building the method):

    - `title`, `trains`: how tables name it and what it trains.
    - `lr`: its default learning rate (None: the base config's), `lr_range`: the log-uniform
      range a search draws from, `source`: where both come from.
    - `needs`: the `BackboneFamily` attributes the method reads with its defaults (e.g. LoRA's
      `attention_projections`); a family without them is named in a ConfigurationError.

    The constructor's keyword defaults are the method's options (`options()`), validated when
    it is built: a bad value is a ConfigurationError naming the key.
    """

    title: ClassVar[str]
    trains: ClassVar[str]
    lr: ClassVar[Optional[float]]
    lr_range: ClassVar[Tuple[float, float]]
    source: ClassVar[str]
    needs: ClassVar[Tuple[str, ...]] = ()
    # The registered embedder that carries the method (for tables).
    component: ClassVar[str]
    # Where the method sits in a config, for messages.
    key = "peft_transformer.method"

    @classmethod
    def name(cls) -> str:
        """The registered name (`lora`, ...)."""
        for name, (registered, _) in Registrable._registry[TuningMethod].items():  # type: ignore[attr-defined]
            if registered is cls:
                return name
        raise KeyError(f"{cls.__name__} is not a registered TuningMethod")

    @classmethod
    def _parameters(cls) -> List[inspect.Parameter]:
        """The constructor's named parameters (none for a method without options)."""
        return [
            parameter for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        ]

    @classmethod
    def options(cls) -> Dict[str, Any]:
        """The method's own options and their defaults: the constructor's keywords that have a
        default other than None."""
        return {
            parameter.name: parameter.default for parameter in cls._parameters()
            if parameter.default is not inspect.Parameter.empty and parameter.default is not None
        }

    @classmethod
    def checked(cls, options: Dict[str, Any], *, key: str) -> "TuningMethod":
        """The method built with `options` (over its defaults); an unknown or invalid option is a
        ConfigurationError naming `key`."""
        accepted = [parameter.name for parameter in cls._parameters()]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = f"takes {', '.join(accepted)} (and lr)" if accepted else "takes no options besides lr"
            raise ConfigurationError(f"{key}: {cls.name()} {takes}; got {', '.join(unknown)}.")
        return cls(**options)

    @classmethod
    def check_family(cls, family: Type[BackboneFamily], model_name: str, *, key: str) -> None:
        """A ConfigurationError when `family` lacks what the method's defaults read."""
        missing = [need for need in cls.needs if not getattr(family, need, None)]
        if missing:
            raise ConfigurationError(
                f"{key}: {cls.name()} reads {', '.join(missing)} of the model's family, which the "
                f"{family.name} family of {model_name!r} does not give; set the method's options "
                f"explicitly (e.g. target_modules)."
            )

    @classmethod
    def embedder(cls, tokens: Dict[str, Any], options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """
        The token embedder config that carries this method, in place of the late-prompt
        embedder `tokens` (a `late_prompt_transformer` config); None keeps late prompt.
        `options` are the method's own (validated, defaults filled in).
        """
        raise NotImplementedError

    @classmethod
    def parameter_groups(cls) -> Optional[List[Any]]:
        """Optimizer `parameter_groups` the method needs in a config (None: the config's)."""
        return None

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        """
        The method applied to a HuggingFace sequence classifier (`AutoModelForSequenceClassification`),
        for `lpt-benchmark`: what trains is marked `requires_grad`, the classification head
        always; returns the model to train (a wrapper where the method needs one).
        """
        raise NotImplementedError

    def describe(self) -> str:
        """A short description for logs, e.g. `lora (r=8, alpha=8)`."""
        return self.name()


class WholeModelMethod(TuningMethod):
    """
    A method that trains the pretrained weights themselves (all, or some chosen through the
    optimizer's `parameter_groups`): carried by AllenNLP's own `pretrained_transformer` with
    `train_parameters: true`, on a copy of the model of its own (the frozen backbone that
    late-prompt components share is never trained).
    """

    component = "pretrained_transformer, train_parameters: true"

    @classmethod
    def embedder(cls, tokens: Dict[str, Any], options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return {"type": "pretrained_transformer", "model_name": tokens["model_name"], "train_parameters": True}


class PeftMethod(TuningMethod):
    """
    A method that PEFT applies to a frozen backbone, carried by `peft_transformer` (whose
    `method` it is). Subclasses turn their options into a PEFT config.

    `virtual_tokens` is how many positions the method puts before the input (prompt tuning's
    soft prompt); `peft_transformer` drops them from its output, so states stay aligned with
    the tokens.
    """

    virtual_tokens: int = 0
    component = "peft_transformer"

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily],
        model_name: str, *, task_type: Optional[str] = None,
    ) -> "peft.PeftConfig":
        """The PEFT config of this method for `model` (the HuggingFace base transformer;
        `task_type` a `peft.TaskType` name, default feature extraction)."""
        raise NotImplementedError

    def prepare(self, base: torch.nn.Module, family: Type[BackboneFamily]) -> None:
        """Readies `base` (the HuggingFace base transformer, a copy of this model's own) for
        the method before PEFT wraps it; most methods need nothing."""

    @classmethod
    def embedder(cls, tokens: Dict[str, Any], options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return frozen_base_embedder(cls, tokens, options)

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        peft = import_peft(self.key)
        self.prepare(model.base_model, family)
        # Sequence classification: PEFT keeps the new head trainable beside the method's weights.
        return peft.get_peft_model(
            model, self.peft_config(model, model.config, family, model_name, task_type="SEQ_CLS")
        )

    @staticmethod
    def task_type(peft_module: ModuleType, task_type: Optional[str] = None) -> "peft.TaskType":
        # Feature extraction by default: PEFT's forward returns the transformer's own output
        # (hidden states), with its prompt and prefix handling for the methods that need it.
        return getattr(peft_module.TaskType, task_type or "FEATURE_EXTRACTION")
