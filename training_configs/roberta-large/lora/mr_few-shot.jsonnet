// roberta-large, mr, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mr', 'few-shot', method='lora')
