// roberta-large, mnli, full-data: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mnli', 'full-data', method='lora')
