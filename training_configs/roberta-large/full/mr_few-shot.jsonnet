// roberta-large, mr, few-shot: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mr', 'few-shot', method='full')
