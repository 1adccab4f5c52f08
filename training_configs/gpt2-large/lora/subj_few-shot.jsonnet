// gpt2-large, subj, few-shot: LoRA in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'subj', 'few-shot', method='lora')
