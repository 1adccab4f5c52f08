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


def test_masked_lm_logits_over_lora_are_peft_own(tiny_models):
    folder = tiny_models["roberta"]
    model = classifier({"type": "peft_transformer", "model_name": folder,
                        "method": {"type": "lora", "r": 4, "alpha": 8}}).eval()
    theirs = peft.get_peft_model(AutoModelForMaskedLM.from_pretrained(folder),
                                 peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])).eval()
    same_trained_values(model, theirs)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(["the movie was fun . It was <mask> .", "boring plot . It was <mask> ."],
                        padding=True, return_tensors="pt")
    tokens = {"tokens": {"token_ids": encoded["input_ids"], "mask": encoded["attention_mask"].bool(),
                         "type_ids": torch.zeros_like(encoded["input_ids"])}}
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
