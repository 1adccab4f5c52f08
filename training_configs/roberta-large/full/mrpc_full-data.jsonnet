// roberta-large, mrpc, full-data: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mrpc', 'full-data', method='full')
