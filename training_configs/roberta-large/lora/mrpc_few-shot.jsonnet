// roberta-large, mrpc, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mrpc', 'few-shot', method='lora')
