// roberta-large, qnli, few-shot: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qnli', 'few-shot', method='ia3')
