"""
Tiny random models of every supported family with real tokenizers, built at test time (no hub):
RoBERTa, BERT, GPT-2, Llama / Mistral / Qwen2 (grouped-query attention), and XLM-RoBERTa /
CamemBERT configs for the core's tests.

The tokenizers are trained on a small corpus that contains the verbalizer words, so that
" great", " terrible", " Yes" ... are single tokens, as with the real models.
"""
import os
from typing import Dict

from tokenizers import ByteLevelBPETokenizer, BertWordPieceTokenizer
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
    tokenizer = RobertaTokenizerFast(
        os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
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
    key/value heads, a byte-level BPE wrapped as a Llama tokenizer that adds `<s>` in front."""
    os.makedirs(folder, exist_ok=True)
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
        "xlm-roberta": build_roberta_variant(os.path.join(root, "tiny-xlm-roberta"), "xlm-roberta"),
        "camembert": build_roberta_variant(os.path.join(root, "tiny-camembert"), "camembert"),
    }
