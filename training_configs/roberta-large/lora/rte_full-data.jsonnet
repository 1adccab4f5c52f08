// roberta-large, rte, full-data: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'rte', 'full-data', method='lora')
