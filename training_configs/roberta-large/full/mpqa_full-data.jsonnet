// roberta-large, mpqa, full-data: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mpqa', 'full-data', method='full')
