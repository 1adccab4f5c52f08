// roberta-large, mr, full-data: BitFit (biases only) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mr', 'full-data', method='bitfit')
