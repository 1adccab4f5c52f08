// gpt2-large, MRPC, few-shot: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('gpt2-large', 'mrpc', 'few-shot')
