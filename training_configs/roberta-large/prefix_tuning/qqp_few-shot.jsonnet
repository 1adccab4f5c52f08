// roberta-large, qqp, few-shot: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'few-shot', method='prefix_tuning')
