// roberta-large, trec, few-shot: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'trec', 'few-shot', method='ia3')
