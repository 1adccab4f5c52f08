"""RoBERTa and its derivatives: BERT's layout, padding-aware positions, `lm_head` as MLM head."""
from transformers import PretrainedConfig

from allennlp_lpt.backbones.bert import EncoderFamily
from allennlp_lpt.core.family import register_family


@register_family
class RobertaFamily(EncoderFamily):
    name = "roberta"
    model_types = ("roberta", "xlm-roberta", "camembert")
    # RobertaForMaskedLM, XLMRobertaForMaskedLM and CamembertForMaskedLM all hold `roberta`.
    base_prefix = "roberta"
    lm_head_prefix = "lm_head"

    @classmethod
    def max_positions(cls, config: PretrainedConfig) -> int:
        # RoBERTa numbers positions from pad_token_id + 1 (514 embeddings: 512 positions).
        return int(config.max_position_embeddings) - int(config.pad_token_id) - 1
