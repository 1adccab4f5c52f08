// roberta-large, MRPC, full-data: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('roberta-large', 'mrpc', 'full-data')
