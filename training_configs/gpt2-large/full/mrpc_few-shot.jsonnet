// gpt2-large, mrpc, few-shot: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mrpc', 'few-shot', method='full')
