// roberta-large, MNLI, few-shot: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('roberta-large', 'mnli', 'few-shot')
