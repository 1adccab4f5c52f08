// roberta-large, qnli, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qnli', 'few-shot', method='lora')
