// gpt2-large, mr, full-data: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mr', 'full-data', method='full')
