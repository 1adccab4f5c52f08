// roberta-large, qqp, full-data: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'full-data', method='full')
