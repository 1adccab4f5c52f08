"""
Tiny random models of every supported family with real tokenizers, built at test time (no hub):
RoBERTa, BERT, GPT-2, Llama / Mistral / Qwen2 (grouped-query attention), Qwen3 (QK-norm),
ModernBERT (alternating global and local attention), and XLM-RoBERTa / CamemBERT configs for the
core's tests.

The tokenizers are trained on a small corpus that contains the verbalizer words, so that
" great", " terrible", " Yes" ... are single tokens, as with the real models.
"""
import os
from typing import Dict

from tokenizers import AddedToken, ByteLevelBPETokenizer, BertWordPieceTokenizer
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizerFast,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2TokenizerFast,
    LlamaTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizerFast,
)
import torch

WORDS = (
    "great terrible good bad movie film story acting plot it was is a the and of to this that "
    "not very really fun boring Yes No Maybe subjective objective Description Entity Expression "
    "Human Location Number They are . , ? !"
)
CORPUS = [
    f"{w} the movie was {w} . It was {w} ! {w}, {w}? {w}" for w in WORDS.split()
] * 30 + ["a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9"] * 5

SIZES = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64)


def _bpe(folder: str, special: list) -> None:
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=special)
    tokenizer.save_model(folder)


def build_roberta(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    _bpe(folder, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    # `<mask>` takes the space before it, as in RoBERTa's own checkpoints (transformers 5 no
    # longer sets this from the vocabulary files).
    tokenizer = RobertaTokenizerFast(
        os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),
    )
    tokenizer.save_pretrained(folder)
    config = RobertaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=130, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, type_vocab_size=1, **SIZES,
    )
    torch.manual_seed(0)
    RobertaForMaskedLM(config).save_pretrained(folder)
    return folder


def build_gpt2(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    _bpe(folder, ["<|endoftext|>"])
    tokenizer = GPT2TokenizerFast(
        os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    )
    tokenizer.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=4, n_head=2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def build_bert(folder: str, *, with_mlm_head: bool = True) -> str:
    os.makedirs(folder, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1)
    wordpiece.save_model(folder)
    tokenizer = BertTokenizerFast(os.path.join(folder, "vocab.txt"))
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=128, **SIZES)
    torch.manual_seed(0)
    (BertForMaskedLM if with_mlm_head else BertModel)(config).save_pretrained(folder)
    return folder


LLAMA_SIZES = dict(
    hidden_size=32, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    intermediate_size=64, max_position_embeddings=256,
)


def build_decoder(folder: str, model_type: str = "llama", **config_changes) -> str:
    """A tiny Llama-family decoder (`llama`, `mistral` or `qwen2`): 4 query heads sharing 2
    key/value heads, a byte-level BPE wrapped as a Llama tokenizer that adds `<s>` in front, or
    for `qwen2` as Qwen2's (no BOS token; transformers 5 loads a `qwen2` model's tokenizer as
    Qwen2's whatever class the folder names)."""
    os.makedirs(folder, exist_ok=True)
    if model_type == "qwen2":
        tokenizer = build_tokenizer(folder, "no_bos")
    else:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"])
        tokenizer = LlamaTokenizerFast(
            tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            add_bos_token=True, add_eos_token=False, legacy=False,
        )
        tokenizer.save_pretrained(folder)
    settings = dict(LLAMA_SIZES, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id, **config_changes)
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


def build_modernbert(folder: str) -> str:
    """
    A tiny ModernBERT with its masked-LM head: layers global, local, local, global (HF's default
    of a global layer every third), a local window of 4 (2 positions either side, shorter than
    the tests' inputs), the two kinds' default rotary bases (160,000 and 10,000). The tokenizer
    is a byte-level BPE with `[CLS] ... [SEP]` and a `[MASK]` that takes the space before it,
    as ModernBERT's.
    """
    from tokenizers import AddedToken, processors
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

    os.makedirs(folder, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1,
                            special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    backend = bpe._tokenizer
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
        unk_token="[UNK]", mask_token=AddedToken("[MASK]", lstrip=True),
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer.save_pretrained(folder)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=2, local_attention=4, global_attn_every_n_layers=3,
        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, cls_token_id=cls_id,
        bos_token_id=cls_id, sep_token_id=sep_id, eos_token_id=sep_id,
    )
    torch.manual_seed(0)
    ModernBertForMaskedLM(config).save_pretrained(folder)
    return folder


def build_roberta_variant(folder: str, model_type: str) -> str:
    """RoBERTa's tokenizer and weights under another RoBERTa-derived model type
    (`xlm-roberta`, `camembert`), whose layers are their own classes in transformers."""
    build_roberta(folder)
    settings = AutoConfig.from_pretrained(folder).to_dict()
    for key in ("model_type", "architectures", "transformers_version", "_name_or_path"):
        settings.pop(key, None)
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    return folder


def build_all(root: str) -> Dict[str, str]:
    return {
        "roberta": build_roberta(os.path.join(root, "tiny-roberta")),
        "gpt2": build_gpt2(os.path.join(root, "tiny-gpt2")),
        "bert": build_bert(os.path.join(root, "tiny-bert")),
        "bert_no_head": build_bert(os.path.join(root, "tiny-bert-base"), with_mlm_head=False),
        "llama": build_decoder(os.path.join(root, "tiny-llama"), "llama"),
        "mistral": build_decoder(os.path.join(root, "tiny-mistral"), "mistral", sliding_window=6),
        "qwen2": build_decoder(os.path.join(root, "tiny-qwen2"), "qwen2", tie_word_embeddings=True),
        # head_dim 16, not hidden_size / heads (8): the projections are wider than the states.
        "qwen3": build_decoder(os.path.join(root, "tiny-qwen3"), "qwen3", head_dim=16,
                               tie_word_embeddings=True),
        "modernbert": build_modernbert(os.path.join(root, "tiny-modernbert")),
        "xlm-roberta": build_roberta_variant(os.path.join(root, "tiny-xlm-roberta"), "xlm-roberta"),
        "camembert": build_roberta_variant(os.path.join(root, "tiny-camembert"), "camembert"),
    }


# Tokenizer conventions of real causal checkpoints, reproduced on the tiny BPE:
#   no_bos:           Qwen2 / Qwen2.5: no BOS token, `<|endoftext|>` is both eos and pad.
#   bos_by_tokenizer: Llama-2 / Mistral: the tokenizer adds `<s>` itself, no pad token.
#   bos_by_template:  Llama-3: a plain fast tokenizer whose post-processor adds
#                     `<|begin_of_text|>`, no pad token.
#   left_padding:     Llama-2's convention with `padding_side="left"`.
CONVENTIONS = ("no_bos", "bos_by_tokenizer", "bos_by_template", "left_padding")


def build_tokenizer(folder: str, convention: str):
    """Saves a tokenizer of `convention` into `folder` and returns it."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

    os.makedirs(folder, exist_ok=True)
    specials = {
        "no_bos": ["<|endoftext|>"],
        "bos_by_template": ["<|begin_of_text|>", "<|end_of_text|>"],
    }.get(convention, ["<unk>", "<s>", "</s>"])
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=specials)
    if convention == "no_bos":
        bpe.save_model(folder)
        tokenizer = Qwen2TokenizerFast(
            vocab=os.path.join(folder, "vocab.json"), merges=os.path.join(folder, "merges.txt"),
            unk_token=None, bos_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        )
    elif convention == "bos_by_template":
        backend = bpe._tokenizer
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", backend.token_to_id("<|begin_of_text|>"))],
            ),
        ])
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
        )
    else:
        tokenizer = LlamaTokenizerFast(
            tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            add_bos_token=True, add_eos_token=False, legacy=False,
            padding_side="left" if convention == "left_padding" else "right",
        )
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_causal_with_convention(folder: str, model_type: str, convention: str) -> str:
    """A tiny causal model (`gpt2`, `llama`, `mistral` or `qwen2`) whose tokenizer follows
    `convention` (see CONVENTIONS)."""
    tokenizer = build_tokenizer(folder, convention)
    ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if model_type == "gpt2":
        config = GPT2Config(n_positions=128, n_embd=32, n_layer=4, n_head=2, **ids)
    else:
        config = AutoConfig.for_model(model_type, **dict(LLAMA_SIZES, **ids))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder
