// roberta-large, sst-2, full-data: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'sst-2', 'full-data', method='prefix_tuning')
