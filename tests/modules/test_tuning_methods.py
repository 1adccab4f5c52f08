"""A tuning method is one class: the comparison's swap, the benchmark's peers and the methods
table all read it, and its options are checked where it is built."""
import os
import subprocess
import sys
from typing import Type

import pytest
import torch
from allennlp.common import Params, Registrable
from allennlp.common.checks import ConfigurationError

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.experiments import benchmark
from allennlp_lpt.experiments.methods import methods_table, with_method
from allennlp_lpt.modules.tuning_methods import PeftMethod, TuningMethod, WholeModelMethod, method_names
from config_swap import CONFIGS, ROOT, tiny_config


class NormsOnly(WholeModelMethod):
    """A throwaway method, written as a new file of tuning_methods/ would be: only the
    LayerNorm weights train."""

    title = "norms only"
    trains = "the LayerNorm weights"
    lr = 2e-3
    lr_range = (1e-4, 1e-2)
    source = "a test"

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ConfigurationError(f"norms_only.scale={scale}: give a number above 0.")
        self.scale = scale

    @classmethod
    def parameter_groups(cls):
        return [[["^_text_field_embedder\\..*(?<!LayerNorm\\.weight)$"], {"requires_grad": False}]]

    def apply_to_classifier(self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str):
        for name, parameter in model.named_parameters():
            parameter.requires_grad_("LayerNorm.weight" in name or not name.startswith(model.base_model_prefix))
        return model


@pytest.fixture
def norms_only():
    TuningMethod.register("norms_only")(NormsOnly)
    try:
        yield NormsOnly
    finally:  # the registry is process-wide: leave it as it was
        Registrable._registry[TuningMethod].pop("norms_only")  # type: ignore[attr-defined]


def test_a_new_method_class_reaches_the_swap_the_benchmark_and_the_table(norms_only, tiny_models, tmp_path):
    assert "norms_only" in method_names()
    assert "| `norms_only` | norms only |" in methods_table()
    assert "norms_only" in benchmark.methods()
    base = Params.from_file(
        tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path), family="bert")
    ).as_dict(quiet=True)
    swapped = with_method(base, "norms_only")
    assert swapped["trainer"]["optimizer"]["lr"] == 2e-3
    assert swapped["trainer"]["optimizer"]["parameter_groups"] == NormsOnly.parameter_groups()
    assert swapped["model"]["text_field_embedder"]["token_embedders"]["tokens"]["type"] == "pretrained_transformer"
    with pytest.raises(ConfigurationError, match="scale=-1"):
        with_method(base, "norms_only", {"scale": -1})
    model, step = benchmark.build_method("norms_only", benchmark.Settings(
        family="bert", size="tiny", batch_size=2, length=8, steps=1, warmup=1, methods=("norms_only",)),
        _tiny_backbone(tmp_path))
    step()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all("LayerNorm.weight" in n or n.startswith("classifier") for n in trained)


def _tiny_backbone(tmp_path) -> str:
    settings = benchmark.Settings(family="bert", size="tiny", batch_size=2, length=8, steps=1, warmup=1)
    return benchmark.build_backbone(settings, str(tmp_path / "backbone"))


def test_the_benchmark_and_the_comparison_build_lora_with_the_same_defaults(tmp_path):
    """One source of defaults: the benchmark's LoRA scales its update by alpha / r as lpt-compare's."""
    from allennlp_lpt.modules.tuning_methods import Lora

    settings = benchmark.Settings(family="roberta", size="tiny", batch_size=2, length=8, steps=1, warmup=1,
                                  methods=("lora",))
    model, _ = benchmark.build_method("lora", settings, benchmark.build_backbone(settings, str(tmp_path / "b")))
    layer = next(module for module in model.modules() if hasattr(module, "lora_A") and module.lora_A)
    options = Lora.options()
    assert layer.r["default"] == options["r"]
    assert layer.scaling["default"] == options["alpha"] / options["r"]


def test_every_method_names_its_defaults_and_sources():
    for name in method_names():
        cls = TuningMethod.by_name(name)
        low, high = cls.lr_range
        assert 0 < low < high and cls.source and cls.title and cls.trains, name
        assert cls.lr is None or low <= cls.lr <= high, name
        assert cls.name() == name


def test_peft_transformer_refuses_a_method_that_is_not_built_on_peft(tiny_models):
    from allennlp_lpt.modules.token_embedders.peft_transformer import PeftTransformerEmbedder

    with pytest.raises(ConfigurationError, match="peft_transformer.method: 'bitfit' is not built on PEFT"):
        PeftTransformerEmbedder.from_params(Params({"model_name": tiny_models["bert"], "method": {"type": "bitfit"}}))
    assert all(issubclass(TuningMethod.by_name(n), PeftMethod)
               for n in ("lora", "ia3", "prompt_tuning", "prefix_tuning"))


def test_lpt_methods_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "allennlp", "lpt-methods"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == methods_table()
