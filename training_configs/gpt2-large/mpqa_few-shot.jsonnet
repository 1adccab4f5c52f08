// gpt2-large, MPQA, few-shot: the paper's recipe (docs/METHOD.md).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('gpt2-large', 'mpqa', 'few-shot')
