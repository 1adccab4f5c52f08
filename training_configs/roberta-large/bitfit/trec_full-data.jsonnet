// roberta-large, trec, full-data: BitFit (biases only) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'trec', 'full-data', method='bitfit')
