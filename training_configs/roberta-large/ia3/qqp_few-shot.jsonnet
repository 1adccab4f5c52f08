// roberta-large, qqp, few-shot: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'few-shot', method='ia3')
