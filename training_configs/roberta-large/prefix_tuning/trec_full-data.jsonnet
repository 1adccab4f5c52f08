// roberta-large, trec, full-data: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'trec', 'full-data', method='prefix_tuning')
