// gpt2-large, mrpc, full-data: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mrpc', 'full-data', method='lora')
