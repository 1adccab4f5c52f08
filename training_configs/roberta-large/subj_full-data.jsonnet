// roberta-large, Subj, full-data: the paper's recipe (LPT_SPEC sections 5 to 7).
// Data paths and overrides: training_configs/README.md.
(import '../common/lpt.libsonnet').experiment('roberta-large', 'subj', 'full-data')
