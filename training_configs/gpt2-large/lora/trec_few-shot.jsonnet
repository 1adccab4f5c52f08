// gpt2-large, trec, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'trec', 'few-shot', method='lora')
