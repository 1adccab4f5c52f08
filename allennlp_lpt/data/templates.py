"""
Templates: text placeholders and `<mask>` around literal words, tokenized piece by piece so that
truncation shortens the texts and never the template or the mask.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from transformers import PreTrainedTokenizerBase

MASK = "<mask>"
_PIECE = re.compile(r"(\{[a-z_]+\}|<mask>)")


class TemplateError(ValueError):
    """A template that cannot be applied (bad placeholder, no room for the text)."""


@dataclass
class EncodedInput:
    token_ids: List[int]
    type_ids: List[int]


def placeholders(template: str) -> List[str]:
    return [piece[1:-1] for piece in _PIECE.findall(template) if piece != MASK]


def _truncate_longest_first(texts: List[List[int]], budget: int) -> List[List[int]]:
    texts = [list(ids) for ids in texts]
    while sum(len(ids) for ids in texts) > budget:
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        if not texts[longest]:
            break
        texts[longest].pop()
    return texts


def causal_prefix(tokenizer: PreTrainedTokenizerBase) -> List[int]:
    """
    The ids a causal model's input starts with, following the checkpoint's own convention: what
    the tokenizer puts in front of a text itself (Llama-2's `<s>`, added by the tokenizer;
    Llama-3's `<|begin_of_text|>`, added by its post-processor), else its BOS token where it
    has one (GPT-2's `<|endoftext|>`, first as in the authors' code), else nothing (Qwen2, whose
    tokenizer has no BOS). Whatever the tokenizer appends (an eos) is left out: the answer
    follows the context.
    """
    probe = "a b"
    plain = tokenizer.encode(probe, add_special_tokens=False)
    full = tokenizer.encode(probe)
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            if start:
                return list(full[:start])
            break
    return [] if tokenizer.bos_token_id is None else [int(tokenizer.bos_token_id)]


class InputEncoder:
    """
    Turns one or two texts into token ids for a model family, optionally through a template.

    # Parameters

    tokenizer : `PreTrainedTokenizerBase`
    causal : `bool`
        Decoder style: the input is the checkpoint's prefix (`causal_prefix`: a BOS token
        exactly once, or none where the tokenizer has none) followed by the texts (pairs joined
        with no separator), no end token (the model appends the answer and eos itself).
    template : `str`, optional
        E.g. `"{s} . It was <mask> ."` or `"{a} ? <mask> , {b}"`: placeholders name the texts in
        the order given; `<mask>` becomes the tokenizer's mask token. Without a template the
        tokenizer's own special tokens join the texts (`<s> a </s></s> b </s>`, `[CLS] a [SEP] b [SEP]`).
    max_length : `int`
        The most tokens an input may have, special tokens included.
    reserve : `int`, optional (default = `0`)
        Tokens to keep free for what the model appends (GPT-2's answer, " ." and eos).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        causal: bool,
        template: Optional[str],
        max_length: int,
        reserve: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.reserve = reserve
        self.causal = causal
        self.template = template
        self.max_length = max_length
        self.prefix = causal_prefix(tokenizer) if causal else []
        if template is not None:
            if MASK in template and tokenizer.mask_token_id is None:
                raise TemplateError(f"template {template!r} uses <mask>, which this tokenizer lacks")
            if not placeholders(template):
                raise TemplateError(f"template {template!r} has no text placeholder such as {{s}}")

    def _ids(self, text: str) -> List[int]:
        return self.tokenizer.encode(text, add_special_tokens=False) if text else []

    def _special(self, ids_a: List[int], ids_b: Optional[List[int]]) -> EncodedInput:
        if self.causal:
            ids = self.prefix + ids_a + (ids_b or [])
            return EncodedInput(ids, [0] * len(ids))
        ids = self.tokenizer.build_inputs_with_special_tokens(ids_a, ids_b)
        types = self.tokenizer.create_token_type_ids_from_sequences(ids_a, ids_b)
        return EncodedInput(ids, types)

    def _num_special(self, pair: bool) -> int:
        if self.causal:
            return len(self.prefix)
        return self.tokenizer.num_special_tokens_to_add(pair=pair)

    def encode(self, texts: Dict[str, str]) -> EncodedInput:
        """
        `texts` maps placeholder names (`s`, or `a` and `b`) to strings. Raises `TemplateError`
        when the template alone does not fit `max_length`.
        """
        if self.template is None:
            names = list(texts)
            ids = [self._ids(texts[name]) for name in names]
            pair = len(ids) == 2
            budget = self.max_length - self.reserve - self._num_special(pair)
            if budget < 0:
                raise TemplateError(f"max_length={self.max_length} leaves no room for the text")
            ids = _truncate_longest_first(ids, budget)
            return self._special(ids[0], ids[1] if pair else None)
        return self._encode_template(texts)

    def _encode_template(self, texts: Dict[str, str]) -> EncodedInput:
        assert self.template is not None
        pieces = [p for p in _PIECE.split(self.template) if p != ""]
        fixed: List[Tuple[str, object]] = []  # ("ids", [..]) for literals and mask, ("text", name)
        previous_ends_with_space = False
        for piece in pieces:
            if piece == MASK:
                fixed.append(("ids", [self.tokenizer.mask_token_id]))
                previous_ends_with_space = False
            elif _PIECE.fullmatch(piece):
                name = piece[1:-1]
                if name not in texts:
                    raise TemplateError(
                        f"template {self.template!r} names {{{name}}} but the texts are "
                        f"{', '.join('{' + n + '}' for n in texts)}"
                    )
                text = texts[name].strip()
                # A text after a literal that ends in a space starts a new word.
                fixed.append(("text", (" " + text) if previous_ends_with_space and text else text))
            else:
                literal = piece.rstrip()
                previous_ends_with_space = piece[-1].isspace()
                if literal:
                    fixed.append(("ids", self._ids(literal)))
        text_slots = [i for i, (kind, _) in enumerate(fixed) if kind == "text"]
        text_ids = [self._ids(fixed[i][1]) for i in text_slots]  # type: ignore[arg-type]
        template_length = sum(len(v) for kind, v in fixed if kind == "ids")  # type: ignore[arg-type]
        budget = self.max_length - self.reserve - self._num_special(False) - template_length
        if budget < 0:
            raise TemplateError(
                f"the template {self.template!r} takes {template_length} tokens, which with the "
                f"special tokens{' and the answer' if self.reserve else ''} leaves no room for "
                f"the text within max_length={self.max_length}"
            )
        text_ids = _truncate_longest_first(text_ids, budget)
        ids: List[int] = []
        for i, (kind, value) in enumerate(fixed):
            ids.extend(text_ids[text_slots.index(i)] if kind == "text" else value)  # type: ignore[arg-type]
        return self._special(ids, None)
