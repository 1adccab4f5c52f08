// gpt2-large, subj, full-data: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'subj', 'full-data', method='prefix_tuning')
