// roberta-large, SST-2, few-shot: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('roberta-large', 'sst-2', 'few-shot')
