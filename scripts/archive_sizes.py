"""
Full and lightweight archive sizes of the paper's RoBERTa-large and GPT2-large configs, computed
from the published model shapes on PyTorch's meta device (no weights are downloaded):

    python scripts/archive_sizes.py

A full archive holds the frozen backbone (the embedder's lower layers and the encoder's upper
layers), the frozen LM head of late_prompt_classifier and the generator; a lightweight one
(`save_backbone: false`, or `allennlp lpt-slim-archive`) holds only the generator.
"""
import torch
from allennlp.common import Params
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, GPT2Config, RobertaConfig

from allennlp_lpt.generators import PromptGenerator

SHAPES = {
    "roberta-large": (RobertaConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                    intermediate_size=4096, vocab_size=50265, max_position_embeddings=514,
                                    type_vocab_size=1), AutoModelForMaskedLM, "lm_head"),
    "gpt2-large": (GPT2Config(n_embd=1280, n_layer=36, n_head=20, vocab_size=50257), AutoModelForCausalLM, "lm_head"),
}


def main() -> None:
    print("| config | full archive weights | lightweight archive weights | ratio |")
    print("|---|---|---|---|")
    for name, (config, auto, head) in SHAPES.items():
        with torch.device("meta"):
            model = auto.from_config(config)
            generator = PromptGenerator.from_params(
                Params({"type": "npg", "bottleneck": 128}), hidden_size=config.hidden_size,
                prompt_length=5, default_dropout=0.1,
            )
        base = getattr(model, model.base_model_prefix)
        backbone = sum(p.numel() for n, p in base.named_parameters() if "pooler" not in n)
        # Our LM head is a separate module, so its decoder weight is stored besides the embeddings.
        lm_head = sum(p.numel() for _, p in getattr(model, head).named_parameters(remove_duplicate=False))
        trained = sum(p.numel() for p in generator.parameters())
        full = 4 * (backbone + lm_head + trained)
        light = 4 * trained
        print(f"| {name} late_prompt_classifier, NPG | {full / 2**20:,.1f} MiB | {light / 2**20:,.2f} MiB | {full / light:,.0f}x |")


if __name__ == "__main__":
    main()
