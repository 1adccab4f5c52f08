"""late_prompt_classifier's verbalizer over the other methods: the masked-LM logits at <mask> and
the causal answers' likelihoods, against the same PEFT model (or HF model) run directly."""
import peft
import pytest
import torch
import torch.nn.functional as F
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

WORDS = {"0": "terrible", "1": "great"}


def vocab():
    vocabulary = Vocabulary()
    vocabulary.add_tokens_to_namespace(["0", "1"], namespace="labels")
    return vocabulary


def classifier(tokens):
    return Model.from_params(vocab=vocab(), params=Params({
        "type": "late_prompt_classifier", "label_words": dict(WORDS),
        "text_field_embedder": {"token_embedders": {"tokens": tokens}},
    }))


def same_trained_values(ours, theirs):
    """Random values in both models' trained weights, in the same order."""
    mine = [p for p in ours.parameters() if p.requires_grad]
    reference = [p for p in theirs.parameters() if p.requires_grad]
    assert [p.shape for p in mine] == [p.shape for p in reference]
    torch.manual_seed(3)
    with torch.no_grad():
        for a, b in zip(mine, reference):
            a.copy_(torch.randn_like(a) * 0.3)
            b.copy_(a)


def _peft_lora_reference(model, folder):
    """PEFT's own LoRA masked LM over `folder` with `model`'s trained values, and a batch of
    two templated sentences for both (the tokenizer, its encoding, AllenNLP's tensors)."""
    theirs = peft.get_peft_model(AutoModelForMaskedLM.from_pretrained(folder),
                                 peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])).eval()
    same_trained_values(model, theirs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(["the movie was fun . It was <mask> .", "boring plot . It was <mask> ."],
                        padding=True, return_tensors="pt")
    tokens = {"tokens": {"token_ids": encoded["input_ids"], "mask": encoded["attention_mask"].bool(),
                         "type_ids": torch.zeros_like(encoded["input_ids"])}}
    return theirs, tokenizer, encoded, tokens


def test_masked_lm_logits_over_lora_are_peft_own(tiny_models):
    folder = tiny_models["roberta"]
    model = classifier({"type": "peft_transformer", "model_name": folder,
                        "method": {"type": "lora", "r": 4, "alpha": 8}}).eval()
    theirs, tokenizer, encoded, tokens = _peft_lora_reference(model, folder)
    logits = model(tokens)["logits"]
    vocab_logits = theirs(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    at_mask = vocab_logits[encoded["input_ids"] == tokenizer.mask_token_id]
    word_ids = [tokenizer.encode(" " + WORDS[label], add_special_tokens=False)[0] for label in ("0", "1")]
    torch.testing.assert_close(logits, at_mask[:, word_ids], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_causal_scores_over_prompt_tuning_are_the_peft_model_likelihoods(tiny_models, family):
    folder = tiny_models[family]
    model = classifier({"type": "peft_transformer", "model_name": folder,
                        "method": {"type": "prompt_tuning", "num_virtual_tokens": 3}}).eval()
    theirs = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(folder),
                                 peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)).eval()
    same_trained_values(model, theirs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    contexts = ["the movie was fun . It was", "a boring plot, really . It was"]
    ids = [tokenizer.encode(text, add_special_tokens=False) for text in contexts]
    longest = max(map(len, ids))
    token_ids = torch.tensor([row + [0] * (longest - len(row)) for row in ids])
    mask = torch.tensor([[True] * len(row) + [False] * (longest - len(row)) for row in ids])
    tokens = {"tokens": {"token_ids": token_ids, "mask": mask, "type_ids": torch.zeros_like(token_ids)}}
    scores = model(tokens)["logits"]
    expected = torch.zeros(2, 2)
    for row, context in enumerate(ids):
        for label in (0, 1):
            answer = tokenizer.encode(" " + WORDS[str(label)] + " .", add_special_tokens=False) + [tokenizer.eos_token_id]
            full = torch.tensor([context + answer])
            logits = theirs(input_ids=full, attention_mask=torch.ones_like(full)).logits[0, 3:]  # past the prompt
            log_probs = F.log_softmax(logits[len(context) - 1:-1], dim=-1)
            expected[row, label] = log_probs.gather(1, torch.tensor(answer)[:, None]).mean()
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=1e-4)


def test_full_fine_tuning_reads_the_pretrained_head(tiny_models):
    folder = tiny_models["bert"]
    model = classifier({"type": "pretrained_transformer", "model_name": folder, "train_parameters": True}).eval()
    reference = AutoModelForMaskedLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(["the movie was fun . It was [MASK] ."], return_tensors="pt")
    tokens = {"tokens": {"token_ids": encoded["input_ids"], "mask": encoded["attention_mask"].bool(),
                         "type_ids": encoded["token_type_ids"]}}
    logits = model(tokens)["logits"]
    at_mask = reference(**encoded).logits[encoded["input_ids"] == tokenizer.mask_token_id]
    word_ids = [tokenizer.convert_tokens_to_ids(WORDS[label]) for label in ("0", "1")]
    torch.testing.assert_close(logits, at_mask[:, word_ids], atol=1e-4, rtol=1e-4)
    # The encoder trains; the head stays the pretrained one.
    assert any(p.requires_grad for p in model._text_field_embedder.parameters())
    assert not any(p.requires_grad for p in model._lm_head.parameters())


def test_a_late_prompt_embedder_without_its_encoder_is_refused(tiny_models):
    with pytest.raises(ConfigurationError, match="late_prompt_transformer embedder needs its encoder"):
        classifier({"type": "late_prompt_transformer", "model_name": tiny_models["roberta"], "prompt_layer": 2})


def test_a_bfloat16_peft_backbone_gets_a_bfloat16_head_from_the_same_load(tiny_models, monkeypatch):
    """backbone_dtype bfloat16: the verbalizer runs without autocast (no dtype mismatch at the
    head), gives the PEFT model's own logits to bf16 precision, and its head is the shared
    backbone's, not a second copy of the model."""
    import gc

    from allennlp_lpt.backbones.roberta import RobertaFamily
    from allennlp_lpt.core.backbone import get_backbone

    folder = tiny_models["roberta"]
    gc.collect()  # no bf16 backbone of this model left over from another test
    loads = []
    load_model = RobertaFamily.load_model.__func__
    monkeypatch.setattr(RobertaFamily, "load_model", classmethod(
        lambda cls, *args, **kwargs: loads.append(kwargs.get("dtype")) or load_model(cls, *args, **kwargs)))
    model = classifier({"type": "peft_transformer", "model_name": folder, "backbone_dtype": "bfloat16",
                        "method": {"type": "lora", "r": 4, "alpha": 8}}).eval()
    assert loads in ([torch.bfloat16], [])  # the embedder's load (if no earlier model holds it), no other
    shared = get_backbone(folder, dtype=torch.bfloat16).model
    shared_storage = {p.data_ptr() for p in shared.parameters()}
    head = list(model._lm_head.parameters())
    assert head and all(p.dtype == torch.bfloat16 and p.data_ptr() in shared_storage for p in head)
    embedder = model._text_field_embedder.token_embedder_tokens
    # RoBERTa's decoder is its word embeddings: one tensor for the embedder and the head.
    assert {p.data_ptr() for p in head} & {p.data_ptr() for p in embedder.parameters()}

    theirs, tokenizer, encoded, tokens = _peft_lora_reference(model, folder)
    assert not torch.is_autocast_enabled("cpu")
    logits = model(tokens)["logits"]
    # The float32 model's logits, with its frozen weights rounded to bfloat16 as the backbone's.
    with torch.no_grad():
        for parameter in theirs.parameters():
            if not parameter.requires_grad:
                parameter.copy_(parameter.to(torch.bfloat16).float())
    vocab_logits = theirs(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    at_mask = vocab_logits[encoded["input_ids"] == tokenizer.mask_token_id]
    word_ids = [tokenizer.encode(" " + WORDS[label], add_special_tokens=False)[0] for label in ("0", "1")]
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, at_mask[:, word_ids], atol=4e-3, rtol=1.6e-2)  # bf16 rounding


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_the_head_over_a_float32_peft_embedder_is_not_a_second_load(tiny_models, monkeypatch, family):
    """The embedder's backbone stays the one the head is read from (it was freed once the
    embedder was built, so the head loaded the model again)."""
    import gc

    from allennlp_lpt.core import family as families

    gc.collect()
    loads = []
    family_class = families.family_for_config(families.load_backbone_config(tiny_models[family]), family)
    load_model = family_class.load_model.__func__
    monkeypatch.setattr(family_class, "load_model", classmethod(
        lambda cls, *args, **kwargs: loads.append(cls.name) or load_model(cls, *args, **kwargs)))
    model = classifier({"type": "peft_transformer", "model_name": tiny_models[family],
                        "method": {"type": "prompt_tuning", "num_virtual_tokens": 3}})
    # At most the embedder's own load (none where an earlier test's model still holds this
    # backbone): the head never loads a copy of its own.
    assert len(loads) <= 1, loads
    embedder = model._text_field_embedder.token_embedder_tokens
    assert {p.data_ptr() for p in model._lm_head.parameters()} & {p.data_ptr() for p in embedder.parameters()}
