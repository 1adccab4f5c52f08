// gpt2-large, RTE, few-shot: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('gpt2-large', 'rte', 'few-shot')
