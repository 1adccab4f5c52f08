from typing import Dict, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.model import Model
from allennlp.modules import Seq2VecEncoder, TextFieldEmbedder
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder
from allennlp.nn import util
from allennlp.training.metrics import CategoricalAccuracy, F1Measure
from transformers import AutoTokenizer

from allennlp_lpt.core import resolve_model_name
from allennlp_lpt.core.backbone import Backbone, get_backbone, shared_copy
from allennlp_lpt.core.family import BackboneFamily, family_for_config
from allennlp_lpt.core.cache import RowKeys, answer_key
from allennlp_lpt.core.checks import BatchCheck
from allennlp_lpt.core.masks import Layout, check_right_padded
from allennlp_lpt.core.pretrained import PretrainedHead
from allennlp_lpt.data.tasks import get_task, split_answer_template
from allennlp_lpt.models.label_metrics import Confusion, LabelMetrics
from allennlp_lpt.modules import pairing
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_encoder import LatePromptEncoder
from allennlp_lpt.modules.token_embedders.late_prompt_transformer import (
    LatePromptTransformerEmbedder,
)
from allennlp_lpt.modules.token_embedders.whole_transformer import WholeTransformerEmbedder
from allennlp_lpt.option_types import TypedOptions


METRICS = ("accuracy", "acc_and_f1")


def _paired_embedder(text_field_embedder: TextFieldEmbedder, encoder: Seq2VecEncoder) -> LatePromptTransformerEmbedder:
    """The one `late_prompt_transformer` in the text field embedder, checked to pair with the
    encoder (same model and prompt layer)."""
    if not isinstance(encoder, LatePromptEncoder):
        raise ConfigurationError(
            f"late_prompt_classifier.encoder must be late_prompt_roberta, "
            f"late_prompt_gpt2 or late_prompt_causal, got {type(encoder).__name__}; leave the "
            f"encoder out where the text field embedder gives final states itself "
            f"(peft_transformer, pretrained_transformer)."
        )
    embedders = [
        module for module in text_field_embedder.modules() if isinstance(module, LatePromptTransformerEmbedder)
    ]
    if len(embedders) != 1:
        raise ConfigurationError(
            "late_prompt_classifier.text_field_embedder must hold exactly one "
            f"late_prompt_transformer token embedder, found {len(embedders)}."
        )
    pairing.check_pair(
        embedders[0], encoder,
        lower_key="model.text_field_embedder's late_prompt_transformer",
        upper_key=f"model.encoder ({encoder.encoder_type})",
    )
    return embedders[0]


def _whole_transformer(text_field_embedder: TextFieldEmbedder) -> Tuple[str, Type[BackboneFamily], Backbone]:
    """
    Without an encoder, the text field embedder's one token embedder that runs a whole
    transformer (`peft_transformer`, `reft_transformer`, AllenNLP's `pretrained_transformer`):
    its model name, its family and the shared backbone the verbalizer's LM head comes from.
    """
    embedders = [
        module for module in text_field_embedder.modules()
        if isinstance(module, (WholeTransformerEmbedder, PretrainedTransformerEmbedder, LatePromptTransformerEmbedder))
    ]
    if len(embedders) != 1 or isinstance(embedders[0], LatePromptTransformerEmbedder):
        raise ConfigurationError(
            "late_prompt_classifier without an encoder needs exactly one peft_transformer, "
            "reft_transformer or pretrained_transformer token embedder (its final states feed "
            "the verbalizer); a late_prompt_transformer embedder needs its encoder "
            "(late_prompt_roberta, late_prompt_gpt2 or late_prompt_causal)."
        )
    embedder = embedders[0]
    if isinstance(embedder, WholeTransformerEmbedder):
        # The backbone the embedder's frozen weights are, in its backbone_dtype: the head's
        # weights are then the same tensors (tied ones with its embeddings), not a second load.
        return embedder.model_name, embedder.family, embedder.backbone
    config = embedder.transformer_model.config
    # AllenNLP's embedder loads and trains a model of its own (float32); the head, frozen,
    # comes from the process's float32 backbone.
    model_name = config.name_or_path
    return model_name, family_for_config(config, model_name), get_backbone(model_name)


def _shared_lm_head(backbone: Backbone, model_name: str) -> PretrainedHead:
    """The LM head of the shared `backbone` of `model_name`, in its dtype: no second load,
    tied weights tied."""
    try:
        head = backbone.lm_head(model_name=model_name)
    except ConfigurationError as error:
        raise ConfigurationError(
            f"{error.message} The verbalizer of late_prompt_classifier reads one; use "
            f"basic_classifier with a linear head for this model instead."
        ) from None
    return PretrainedHead(shared_copy(head))


@Model.register("late_prompt_classifier")
class LatePromptClassifier(TypedOptions, Model):
    """
    The paper's classifier: no new head, the frozen pretrained language-model head decides.

    - Bidirectional encoders (RoBERTa, BERT with an MLM head): the final state at `<mask>` goes
      through the masked-LM head; training minimises cross-entropy over the full vocabulary with
      the gold label word as target; prediction is the argmax over the label words' logits.
    - Causal models, GPT-2 and the Llama family (generative scoring): each candidate input is
      the context followed by `" " + label word`, `answer_suffix` and eos; its score is the mean
      negative log-likelihood of those tokens, and the lowest wins. Training scores the gold
      candidate only (one row per context); evaluation and prediction run each context once
      with every candidate's tokens beside it, each seeing only the context and itself (a
      `Layout`): the same scores as one row per candidate. The LM head runs only at the scored
      positions.

    Registered as a `Model` with name "late_prompt_classifier".

    # Parameters

    vocab : `Vocabulary`
    text_field_embedder : `TextFieldEmbedder`
        Holding one `late_prompt_transformer` embedder (with `encoder`), or one
        `peft_transformer`, `reft_transformer` or `pretrained_transformer` embedder (without).
        The frozen LM head is the one of the shared backbone the encoder or the
        `peft_transformer` / `reft_transformer` already reads, in its `backbone_dtype` (its
        weights the same tensors, no second load); a `pretrained_transformer` trains a model of
        its own, so the head comes from the float32 backbone. The head's logits are taken in
        float32.
    encoder : `Seq2VecEncoder`, optional
        A `late_prompt_roberta`, `late_prompt_gpt2` or `late_prompt_causal` encoder of the same
        model and prompt layer as the embedder's `late_prompt_transformer`. Leave it out where
        the text field embedder holds a `peft_transformer` (LoRA, (IA)^3, prompt or prefix
        tuning), a `reft_transformer` (LoReFT) or AllenNLP's `pretrained_transformer` (full
        fine-tuning, BitFit): their final states then feed the same frozen LM head, so the
        methods differ in nothing else.
        Without an encoder, causal models score every answer in a row of its own.
    label_words : `Dict[str, str]`, optional
        Label -> word. For masked LMs each `" " + word` must be one token of the model's
        vocabulary; for causal models it may be several. Default: the `task`'s verbalizer for
        this family.
    task : `str`, optional
        One of the paper's tasks (`allennlp_lpt.data.tasks`): supplies the default label words,
        answer suffix and metric.
    answer_suffix : `str`, optional (default: the task's GPT-2 template after `{label}`, else `" ."`)
        GPT-2 only: what follows the label word before eos.
    metric : `str`, optional (default: the task's, else `"accuracy"`)
        `"accuracy"`, or `"acc_and_f1"` ((accuracy + F1) / 2 with label "1" as positive, as for
        MRPC and QQP); the validation metric is then `acc_and_f1`.
    label_namespace : `str`, optional (default = `"labels"`)
    save_backbone : `bool`, optional (default = `True`)
        `False` leaves the frozen LM head out of archives (see `late_prompt_transformer`).
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Optional[Seq2VecEncoder] = None,
        label_words: Optional[Dict[str, str]] = None,
        *,
        task: Optional[str] = None,
        answer_suffix: Optional[str] = None,
        metric: Optional[str] = None,
        label_namespace: str = "labels",
        save_backbone: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(vocab, **kwargs)
        self._text_field_embedder = text_field_embedder
        self._encoder = encoder
        self._lower_name: Optional[str] = None
        if encoder is not None:
            lower = _paired_embedder(text_field_embedder, encoder)
            # Where the embedder sits (a name, not a second reference: that would register it
            # as a submodule twice and give its weights a second set of state-dict keys).
            self._lower_name = next(
                name for name, module in text_field_embedder.named_modules() if module is lower
            )
            self._model_name, family = encoder.model_name, encoder.family
            backbone = encoder.upper.backbone
        else:
            self._model_name, family, backbone = _whole_transformer(text_field_embedder)
        self._label_namespace = label_namespace
        self._causal = family.is_causal
        self._tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(self._model_name))
        self._lm_head = _shared_lm_head(backbone, self._model_name)
        self._lm_head.save_weights = save_backbone

        spec = None if task is None else get_task(task, key="model.task")
        if label_words is None:
            if spec is None:
                raise ConfigurationError(
                    "late_prompt_classifier needs label_words (label -> word) or a task."
                )
            label_words = spec.words_for(self._causal)
        if answer_suffix is None:
            answer_suffix = " ."
            if spec is not None and spec.gpt2_template is not None:
                answer_suffix = split_answer_template(spec.gpt2_template)[1]
        self._label_words = self._words_in_label_order(label_words)
        if self._causal:
            self._set_answers(answer_suffix)
        else:
            word_ids = [self._single_token(word) for word in self._label_words]
            self.register_buffer("_label_word_ids", torch.tensor(word_ids), persistent=False)
        # On a GPU these read their verdicts back a step later instead of waiting for them.
        self._mask_token_check = BatchCheck()
        self._padding_check = BatchCheck()
        self._metric = metric or (spec.metric if spec is not None else "accuracy")
        self._accuracy = CategoricalAccuracy()
        self._f1 = self._f1_measure(self._metric, label_words)
        self._label_metrics = LabelMetrics(self.vocab, label_namespace)

    def _words_in_label_order(self, label_words: Dict[str, str]) -> List[str]:
        """The label words in the order of the label vocabulary (every label needs one)."""
        labels = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
        missing = [labels[i] for i in range(len(labels)) if labels[i] not in label_words]
        if missing:
            raise ConfigurationError(
                f"label_words has no word for the label(s) {missing}; it maps "
                f"{sorted(label_words)}."
            )
        return [label_words[labels[i]] for i in range(len(labels))]

    def _set_answers(self, answer_suffix: str) -> None:
        """Generative scoring's answers, one per label: `" " + word`, the suffix and eos."""
        if self._tokenizer.eos_token_id is None:
            raise ConfigurationError(
                f"late_prompt_classifier: the tokenizer of {self._model_name!r} has no "
                f"eos token, which ends every answer of generative scoring. Give the tokenizer an "
                f"eos_token (tokenizer_config.json), or use basic_classifier."
            )
        suffix = self._tokenizer.encode(answer_suffix, add_special_tokens=False)
        answers = [
            self._word_tokens(word) + suffix + [self._tokenizer.eos_token_id]
            for word in self._label_words
        ]
        self._answers: List[List[int]] = answers  # on the host, to key cached training rows
        # Answers may differ in length (a label word of several tokens): padded with 0, with
        # each one's length beside it.
        longest = max(len(answer) for answer in answers)
        padded = [answer + [0] * (longest - len(answer)) for answer in answers]
        self.register_buffer("_answer_ids", torch.tensor(padded), persistent=False)
        self.register_buffer(
            "_answer_lengths", torch.tensor([len(answer) for answer in answers]), persistent=False
        )

    def _f1_measure(self, metric: str, label_words: Dict[str, str]) -> Optional[F1Measure]:
        """The F1 of label "1" where the metric is `acc_and_f1`, else None."""
        if metric not in METRICS:
            raise ConfigurationError(f"metric={metric!r} is not one of {', '.join(METRICS)}.")
        if metric != "acc_and_f1":
            return None
        if "1" not in label_words or self.vocab.get_vocab_size(self._label_namespace) != 2:
            raise ConfigurationError(
                "metric 'acc_and_f1' needs two labels, '0' and '1' (the positive class)."
            )
        return F1Measure(self.vocab.get_token_index("1", self._label_namespace))

    @property
    def _lower(self) -> LatePromptTransformerEmbedder:
        """The `late_prompt_transformer` embedder inside the text field embedder."""
        assert self._lower_name is not None, "only a late-prompt model has a lower half"
        return self._text_field_embedder.get_submodule(self._lower_name)  # type: ignore[return-value]

    def _final_states(
        self, embedded: torch.Tensor, mask: torch.Tensor, generator_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The final states, `(batch_size, seq_len, hidden_size)`: the encoder's layers above
        the prompt, or the embedder's own output where there is no encoder."""
        if self._encoder is None:
            return embedded
        return self._encoder.encode_tokens(embedded, mask, generator_mask=generator_mask)

    def _word_tokens(self, word: str) -> List[int]:
        """A causal model's tokens of `" " + word` (one or more)."""
        ids = self._tokenizer.encode(" " + word, add_special_tokens=False)
        if not ids:
            raise ConfigurationError(f"label_words: {word!r} is empty once tokenized.")
        return ids

    def _single_token(self, word: str) -> int:
        ids = self._tokenizer.encode(" " + word, add_special_tokens=False)
        if len(ids) != 1:
            pieces = self._tokenizer.convert_ids_to_tokens(ids)
            raise ConfigurationError(
                f"label_words: {word!r} is not one token of {self._model_name!r} "
                f"(' {word}' tokenizes to {pieces}); choose a word that is one token."
            )
        return ids[0]

    def train(self, mode: bool = True) -> "LatePromptClassifier":
        # An epoch's end: every batch's verdict is read by now.
        self._mask_token_check.flush()
        self._padding_check.flush()
        return super().train(mode)

    def forward(  # type: ignore
        self, tokens: TextFieldTensors, label: Optional[torch.LongTensor] = None
    ) -> Dict[str, torch.Tensor]:
        """
        # Parameters

        tokens : `TextFieldTensors`
            The templated input: with `<mask>` for masked LMs, the context (ending before the
            answer) for GPT-2.
        label : `torch.LongTensor`, optional, shape `(batch_size,)`

        # Returns

        `logits` `(batch_size, num_labels)` (the label words' logits, or minus the mean NLL),
        `probs` `(batch_size, num_labels)`, and `loss` when labels are given.
        """
        if self._causal:
            return self._forward_generative(tokens, label)
        return self._forward_masked(tokens, label)

    def _forward_masked(
        self, tokens: TextFieldTensors, label: Optional[torch.LongTensor]
    ) -> Dict[str, torch.Tensor]:
        mask = util.get_text_field_mask(tokens)
        token_ids = util.get_token_ids_from_text_field_tensors(tokens)
        is_mask = token_ids == self._tokenizer.mask_token_id
        mask_counts = is_mask.sum(dim=1)
        self._mask_token_check(
            mask_counts != 1,
            lambda row: (
                f"late_prompt_classifier needs exactly one mask token per input; row {row} has "
                f"{int(mask_counts[row])}. Use a reader template with one <mask>, e.g. "
                f"'{{s}} . It was <mask> .'"
            ),
        )
        final = self._final_states(self._text_field_embedder(tokens), mask)
        # A gather at each row's mask position: boolean indexing would wait for the GPU.
        position = is_mask.int().argmax(dim=1)  # (batch,)
        at_mask = final.gather(1, position[:, None, None].expand(-1, 1, final.size(-1))).squeeze(1)
        # float32 for the softmax and the loss, whatever dtype the frozen head is stored in.
        vocab_logits = self._lm_head(at_mask).float()  # (batch, vocab)
        logits = vocab_logits[:, self._label_word_ids]
        output = {"logits": logits, "probs": F.softmax(logits, dim=-1)}
        if label is not None:
            output["loss"] = F.cross_entropy(vocab_logits, self._label_word_ids[label])
            self._update_metrics(logits, label)
        return output

    def _answer_nll(
        self,
        tokens: TextFieldTensors,
        answers: torch.Tensor,
        answer_lengths: torch.Tensor,
        row_keys: Optional[RowKeys] = None,
    ) -> torch.Tensor:
        """
        Mean NLL of each answer after its context, one row per (context, answer): the path of
        training (the gold answer only) and the reference the shared path is tested against.

        # Parameters

        tokens : the contexts, `(batch_size, seq_len)` token ids.
        answers : `torch.LongTensor`, shape `(batch_size, num_answers, answer_len)`
            Padded with anything past each answer's length.
        answer_lengths : `torch.LongTensor`, shape `(batch_size, num_answers)`
        row_keys : `RowKeys`, optional
            The cache keys of the `batch_size * num_answers` (context, answer) rows, computed
            on the host (`_gold_answer_keys`).

        # Returns

        `torch.Tensor`, shape `(batch_size, num_answers)`.
        """
        key = next(iter(tokens))
        context_ids = util.get_token_ids_from_text_field_tensors(tokens)
        context_mask = util.get_text_field_mask(tokens)
        # The answer is written after each context's last real token.
        check_right_padded(context_mask, where="late_prompt_classifier", check=self._padding_check)
        batch, num_answers, answer_len = answers.shape
        seq_len = context_ids.size(1) + answer_len
        rows = batch * num_answers
        lengths = context_mask.sum(dim=1).repeat_interleave(num_answers)  # (rows,)
        ids = context_ids.new_zeros(rows, seq_len)
        ids[:, : context_ids.size(1)] = context_ids.repeat_interleave(num_answers, dim=0)
        # Right padding: write each answer just after its context's last real token.
        answer_positions = lengths[:, None] + torch.arange(answer_len, device=ids.device)
        ids.scatter_(1, answer_positions, answers.reshape(rows, answer_len))
        positions = torch.arange(seq_len, device=ids.device)[None]
        mask = positions < (lengths + answer_lengths.reshape(rows))[:, None]
        context_only = positions < lengths[:, None]
        inputs = {"token_ids": ids, "mask": mask, "type_ids": torch.zeros_like(ids)}
        if row_keys is not None:
            inputs["row_keys"] = row_keys  # type: ignore[assignment]
        embedded = self._text_field_embedder({key: inputs})
        final = self._final_states(embedded, mask, generator_mask=context_only)
        # Token at position p is predicted from the state at p - 1.
        scored = final.gather(
            1, (answer_positions - 1)[..., None].expand(-1, -1, final.size(-1))
        )  # (rows, answer_len, hidden)
        return self._mean_nll(scored.view(batch, num_answers, answer_len, -1), answers, answer_lengths)

    def _answer_nll_shared(self, tokens: TextFieldTensors) -> torch.Tensor:
        """
        Mean NLL of every label's answer after each context, with the context run once: each
        row holds its context, then every answer's tokens but the last, each answer at the
        positions it would have right after the context and seeing only the context and its
        own earlier tokens (a `Layout`), so the states equal those of one row per answer
        (`_answer_nll`) at a fraction of the work.

        # Returns

        `torch.Tensor`, shape `(batch_size, num_labels)`.
        """
        context_ids = util.get_token_ids_from_text_field_tensors(tokens)
        context_mask = util.get_text_field_mask(tokens).bool()
        check_right_padded(context_mask, where="late_prompt_classifier", check=self._padding_check)
        batch, context_len = context_ids.shape
        answers, answer_lengths = self._answer_ids, self._answer_lengths  # (C, A), (C,)
        num_answers, answer_len = answers.shape
        limit = self._lower.stack.max_positions
        if context_len + answer_len > limit:  # what one row per answer would need too
            raise ValueError(
                f"late_prompt_classifier: contexts of {context_len} tokens and answers of up to "
                f"{answer_len} are longer than {self._model_name!r} has positions for "
                f"({limit}); lower dataset_reader.max_length."
            )
        device = context_ids.device
        lengths = context_mask.sum(dim=1)  # (batch,)
        # Answer slots: each answer's tokens but its last (nothing is predicted from that one).
        slots = answer_len - 1
        slot_answer = torch.arange(num_answers, device=device).repeat_interleave(slots)
        slot_offset = torch.arange(slots, device=device).repeat(num_answers)
        slot_real = slot_offset < (answer_lengths[slot_answer] - 1)
        ids = torch.cat([context_ids, answers[:, :slots].reshape(1, -1).expand(batch, -1)], dim=1)
        mask = torch.cat([context_mask, slot_real.expand(batch, -1)], dim=1)
        positions = torch.cat([
            torch.arange(context_len, device=device).expand(batch, -1),
            lengths[:, None] + slot_offset[None],
        ], dim=1)
        # 0: the context; a + 1: answer a. A slot sees real slots at earlier or equal positions
        # of the context or of its own answer.
        segment = torch.cat([
            torch.zeros(batch, context_len, dtype=torch.long, device=device),
            (slot_answer + 1).expand(batch, -1),
        ], dim=1)
        visible = (
            mask[:, None, :]
            & (positions[:, None, :] <= positions[:, :, None])
            & ((segment[:, None, :] == 0) | (segment[:, None, :] == segment[:, :, None]))
        )
        layout = Layout(positions, visible)
        generator_mask = torch.cat([context_mask, torch.zeros_like(mask[:, context_len:])], dim=1)
        states = self._lower.embed_layout(ids, mask, layout)
        final = self._encoder.encode_layout(states, mask, generator_mask, layout)
        # Answer a's token j is predicted from the context's last state (j = 0) or from its
        # own slot j - 1.
        offsets = torch.arange(answer_len, device=device)
        own_slot = context_len + torch.arange(num_answers, device=device)[:, None] * slots + offsets - 1
        index = torch.where(offsets == 0, (lengths - 1)[:, None, None], own_slot[None])  # (batch, C, A)
        scored = final.gather(
            1, index.reshape(batch, -1, 1).expand(-1, -1, final.size(-1))
        ).view(batch, num_answers, answer_len, -1)
        return self._mean_nll(
            scored, answers[None].expand(batch, -1, -1), answer_lengths[None].expand(batch, -1)
        )

    def _gold_answer_keys(self, tokens: TextFieldTensors) -> Optional[RowKeys]:
        """
        The cache keys of the (context, gold answer) rows of training, from the keys and labels
        the reader computed on the host (`cache_keys: true`): one entry per instance, found
        without reading the batch back from the device. None without a cache (nothing to key),
        or where the batch has no keys or a row no label: the embedder then keys the rows from
        their token ids.
        """
        if self._lower_name is None or self._lower.cache is None:
            return None
        keyed = next(iter(tokens.values())).get("row_keys")
        if not isinstance(keyed, RowKeys) or keyed.labels is None or None in keyed.labels:
            return None
        answers = [
            self._answers[self.vocab.get_token_index(label, self._label_namespace)]
            for label in keyed.labels  # type: ignore[arg-type]
        ]
        return RowKeys(
            tuple(answer_key(key, answer) for key, answer in zip(keyed.keys, answers)),
            tuple(length + len(answer) for length, answer in zip(keyed.lengths, answers)),
        )

    def _mean_nll(
        self, scored: torch.Tensor, answers: torch.Tensor, answer_lengths: torch.Tensor
    ) -> torch.Tensor:
        """
        `(batch, C, A, hidden)` states that predict `(batch, C, A)` answer tokens -> the mean
        NLL over each answer's real tokens, `(batch, C)`.
        """
        # float32 for the softmax, whatever dtype the frozen head is stored in.
        log_probs = F.log_softmax(self._lm_head(scored).float(), dim=-1)
        nll = -log_probs.gather(3, answers[..., None]).squeeze(3)
        real = torch.arange(answers.size(2), device=answers.device) < answer_lengths[..., None]
        return (nll * real).sum(dim=2) / answer_lengths

    def _forward_generative(
        self, tokens: TextFieldTensors, label: Optional[torch.LongTensor]
    ) -> Dict[str, torch.Tensor]:
        if self.training and label is not None:
            # The loss needs the gold answer only.
            nll = self._answer_nll(
                tokens, self._answer_ids[label][:, None, :], self._answer_lengths[label][:, None],
                row_keys=self._gold_answer_keys(tokens),
            )
            return {"loss": nll.mean()}
        if self._encoder is None:
            # Every label's answer in a row of its own (the shared pass runs late prompt's
            # stacks).
            batch = util.get_token_ids_from_text_field_tensors(tokens).size(0)
            nll = self._answer_nll(
                tokens, self._answer_ids[None].expand(batch, -1, -1),
                self._answer_lengths[None].expand(batch, -1),
            )
        else:
            # Evaluation and prediction: every label's answer, over one pass of each context.
            nll = self._answer_nll_shared(tokens)  # (batch, num_labels)
        logits = -nll
        output = {"logits": logits, "probs": F.softmax(logits, dim=-1)}
        if label is not None:
            output["loss"] = nll.gather(1, label[:, None]).mean()
            self._update_metrics(logits, label)
        return output

    def make_output_human_readable(
        self, output_dict: Dict[str, torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """
        Adds `label` (the predicted label), `label_word` (its verbalizer word) and
        `class_probabilities` (label -> probability). `probs` and `logits` follow the label
        vocabulary, which lists the reader's declared `labels` in their order
        (`OrderedLabelField`); the `lpt_classifier` predictor names that order in `labels`.
        """
        probs = output_dict["probs"]
        predictions = probs.argmax(dim=-1).tolist()
        labels: List[str] = [
            self.vocab.get_token_from_index(index, namespace=self._label_namespace)
            for index in predictions
        ]
        output_dict["label"] = labels  # type: ignore
        output_dict["label_word"] = [self._label_words[index] for index in predictions]  # type: ignore
        names = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
        output_dict["class_probabilities"] = [  # type: ignore
            {names[i]: float(p) for i, p in enumerate(row)} for row in probs.tolist()
        ]
        return output_dict

    def _update_metrics(self, logits: torch.Tensor, label: torch.Tensor) -> None:
        self._accuracy(logits, label)
        if self._f1 is not None:
            self._f1(logits, label)
        self._label_metrics(logits, label)

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        """
        `accuracy`; with `metric: acc_and_f1`, `f1` (label "1"'s, as for MRPC and QQP) and
        `acc_and_f1`; `macro_f1`, and at the end of a pass each label's `precision_label=L`,
        `recall_label=L` and `f1_label=L` (`LabelMetrics`). A causal model's training scores
        no candidates, so its training epochs report none but `accuracy` (0).
        """
        metrics = {"accuracy": self._accuracy.get_metric(reset)}
        # F1Measure raises where it counted nothing.
        if self._f1 is not None and self._label_metrics.counted:
            metrics["f1"] = self._f1.get_metric(reset)["f1"]
            metrics["acc_and_f1"] = (metrics["accuracy"] + metrics["f1"]) / 2
        metrics.update(self._label_metrics.get_metrics(reset))
        return metrics

    def confusion_matrix(self) -> Optional[Confusion]:
        """The confusion counts of the last finished pass over a dataset (the last
        `get_metrics(reset=True)`), in the label vocabulary's order; None before any."""
        return self._label_metrics.last_confusion

    default_predictor = "lpt_classifier"
