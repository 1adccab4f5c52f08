// roberta-large, trec, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'trec', 'few-shot', method='lora')
