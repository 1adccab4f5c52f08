// gpt2-large, rte, full-data: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'rte', 'full-data', method='lora')
