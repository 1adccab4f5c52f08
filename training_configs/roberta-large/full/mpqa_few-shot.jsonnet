// roberta-large, mpqa, few-shot: full fine-tuning in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mpqa', 'few-shot', method='full')
