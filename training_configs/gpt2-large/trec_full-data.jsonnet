// gpt2-large, TREC, full-data: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('gpt2-large', 'trec', 'full-data')
