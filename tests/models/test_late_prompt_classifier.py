"""late_prompt_classifier against HuggingFace's own masked-LM / causal-LM forward passes."""
import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Batch, DatasetReader, Vocabulary
from allennlp.models import Model
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from hf_reference import hf_with_prompt

PROMPT_LAYER = 2
N = 3
TEXTS = ["the movie was great fun", "a boring film , it was not good and the plot was bad"]


CAUSAL = {"gpt2": "late_prompt_gpt2", "llama": "late_prompt_causal", "qwen2": "late_prompt_causal",
          "qwen3": "late_prompt_causal"}


def build(model_dir, family, *, label_words=None, template=None, generator="npg"):
    encoder_type = CAUSAL.get(family, "late_prompt_roberta")
    template = template or ("{s} It was" if family in CAUSAL else "{s} . It was <mask> .")
    reader = DatasetReader.from_params(
        Params({"type": "lpt_tsv", "model_name": model_dir, "template": template})
    )
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], namespace="labels")
    model = Model.from_params(
        vocab=vocab,
        params=Params(
            {
                "type": "late_prompt_classifier",
                "text_field_embedder": {
                    "token_embedders": {
                        "tokens": {"type": "late_prompt_transformer", "model_name": model_dir,
                                   "prompt_layer": PROMPT_LAYER}
                    }
                },
                "encoder": {"type": encoder_type, "model_name": model_dir, "prompt_layer": PROMPT_LAYER,
                            "prompt_length": N, "generator": {"type": generator}},
                "label_words": label_words or {"0": "terrible", "1": "great"},
            }
        ),
    )
    return reader, vocab, model


def tensors(reader, vocab, texts, labels=None):
    instances = [
        reader.text_to_instance(text, label=None if labels is None else labels[i])
        for i, text in enumerate(texts)
    ]
    for instance in instances:
        reader.apply_token_indexers(instance)
    batch = Batch(instances)
    batch.index_instances(vocab)
    return batch.as_tensor_dict()


def npg_prompt(model, hidden):
    """The naive generator's prompt from one state `(batch, H)`, computed from its weights."""
    generator = model._encoder.generator
    return generator.up(torch.relu(generator.down(hidden))).view(hidden.size(0), N, -1)


@torch.no_grad()
def test_roberta_verbalizer_logits_equal_hf_masked_lm(tiny_models):
    reader, vocab, model = build(tiny_models["roberta"], "roberta")
    model.eval()
    batch = tensors(reader, vocab, TEXTS)
    ours = model(**batch)["logits"]

    hf = AutoModelForMaskedLM.from_pretrained(tiny_models["roberta"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["roberta"])
    ids = batch["tokens"]["tokens"]["token_ids"]
    mask = batch["tokens"]["tokens"]["mask"]
    states = hf.roberta(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
    prompt = npg_prompt(model, states.hidden_states[PROMPT_LAYER][:, 0])  # reads <s>
    final = hf_with_prompt(hf.roberta, ids, mask, prompt, PROMPT_LAYER)
    at_mask = final[ids == tokenizer.mask_token_id]
    words = [tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in ("terrible", "great")]
    expected = hf.lm_head(at_mask)[:, words]
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def _causal_reference_nll(model_dir, model, context_ids, context_len, answers):
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    base = hf.transformer if hf.config.model_type == "gpt2" else hf.model
    rows = []
    for answer in answers:
        ids = torch.tensor([context_ids[:context_len] + answer])
        mask = torch.ones_like(ids, dtype=torch.bool)
        states = base(input_ids=ids, output_hidden_states=True).hidden_states[PROMPT_LAYER]
        prompt = npg_prompt(model, states[:, context_len - 1])  # the last context token
        logits = hf.lm_head(hf_with_prompt(base, ids, mask, prompt, PROMPT_LAYER))
        log_probs = torch.log_softmax(logits[0, context_len - 1 : -1], dim=-1)
        rows.append(-log_probs[torch.arange(len(answer)), torch.tensor(answer)].mean())
    return torch.stack(rows)


@torch.no_grad()
@pytest.mark.parametrize("family", sorted(CAUSAL))
def test_causal_scores_are_the_mean_nll_of_word_period_and_eos(tiny_models, family):
    """GPT-2, the Llama family and Qwen3 (the tiny Qwen2 and Qwen3 tie their LM head to the
    embeddings)."""
    reader, vocab, model = build(tiny_models[family], family)
    model.eval()
    batch = tensors(reader, vocab, TEXTS, labels=["1", "0"])
    output = model(**batch)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[family])
    answers = [
        tokenizer.encode(f" {w} .", add_special_tokens=False) + [tokenizer.eos_token_id]
        for w in ("terrible", "great")
    ]
    ids = batch["tokens"]["tokens"]["token_ids"]
    lengths = batch["tokens"]["tokens"]["mask"].sum(1)
    if family != "qwen2":  # Qwen2 has no BOS token (tests/data/test_tokenizer_conventions.py)
        assert ids[0, 0] == tokenizer.bos_token_id
    for row in range(2):
        expected = _causal_reference_nll(tiny_models[family], model, ids[row].tolist(), int(lengths[row]), answers)
        torch.testing.assert_close(-output["logits"][row], expected, atol=1e-5, rtol=1e-4)
    gold_nll = -output["logits"][torch.arange(2), batch["label"]]
    torch.testing.assert_close(output["loss"], gold_nll.mean())
    readable = model.make_output_human_readable(output)
    assert set(readable["label_word"]) <= {"terrible", "great"}


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_causal_training_scores_only_the_gold_answer(tiny_models, family):
    reader, vocab, model = build(tiny_models[family], family, generator="static")
    batch = tensors(reader, vocab, TEXTS, labels=["1", "0"])
    model.eval()
    gold = -model(**batch)["logits"][torch.arange(2), batch["label"]]
    model.train()
    for module in model.modules():  # train mode without dropout, for an exact comparison
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    output = model(**batch)
    assert set(output) == {"loss"}
    torch.testing.assert_close(output["loss"], gold.mean(), atol=1e-5, rtol=1e-4)


def test_roberta_cross_entropy_is_over_the_full_vocabulary(tiny_models):
    reader, vocab, model = build(tiny_models["roberta"], "roberta")
    model.eval()
    batch = tensors(reader, vocab, TEXTS, labels=["1", "0"])
    output = model(**batch)
    two_way = torch.nn.functional.cross_entropy(output["logits"], batch["label"])
    assert float(output["loss"]) > float(two_way)  # the other words take probability mass


def test_a_label_word_that_is_not_one_token_names_the_word(tiny_models):
    with pytest.raises(ConfigurationError, match="'xylophonic' is not one token"):
        build(tiny_models["roberta"], "roberta", label_words={"0": "terrible", "1": "xylophonic"})


def test_a_label_without_a_word(tiny_models):
    with pytest.raises(ConfigurationError, match=r"no word for the label\(s\) \['1'\]"):
        build(tiny_models["roberta"], "roberta", label_words={"0": "terrible"})


def test_a_model_without_masked_lm_head_is_refused(tiny_models):
    with pytest.raises(ConfigurationError, match="no pretrained language-model head"):
        build(tiny_models["bert_no_head"], "bert")
