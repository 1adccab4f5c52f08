// roberta-large, qnli, few-shot: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qnli', 'few-shot', method='full')
