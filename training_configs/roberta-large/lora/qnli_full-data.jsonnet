// roberta-large, qnli, full-data: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qnli', 'full-data', method='lora')
