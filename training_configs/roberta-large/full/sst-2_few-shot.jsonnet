// roberta-large, sst-2, few-shot: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'sst-2', 'few-shot', method='full')
