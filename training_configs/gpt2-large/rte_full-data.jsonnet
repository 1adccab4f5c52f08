// gpt2-large, RTE, full-data: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('gpt2-large', 'rte', 'full-data')
