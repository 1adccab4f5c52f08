// gpt2-large, subj, full-data: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'subj', 'full-data', method='full')
