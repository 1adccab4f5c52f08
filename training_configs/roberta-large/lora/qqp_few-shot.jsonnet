// roberta-large, qqp, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'few-shot', method='lora')
