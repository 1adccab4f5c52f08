// roberta-large, mnli, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mnli', 'few-shot', method='lora')
