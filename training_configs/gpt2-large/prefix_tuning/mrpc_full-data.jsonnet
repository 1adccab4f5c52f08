// gpt2-large, mrpc, full-data: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mrpc', 'full-data', method='prefix_tuning')
