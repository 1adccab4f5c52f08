// roberta-large, mrpc, full-data: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mrpc', 'full-data', method='ia3')
