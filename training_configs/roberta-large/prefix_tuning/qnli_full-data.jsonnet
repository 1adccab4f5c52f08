// roberta-large, qnli, full-data: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qnli', 'full-data', method='prefix_tuning')
