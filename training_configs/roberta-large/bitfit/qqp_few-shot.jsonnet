// roberta-large, qqp, few-shot: BitFit (biases only) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'few-shot', method='bitfit')
