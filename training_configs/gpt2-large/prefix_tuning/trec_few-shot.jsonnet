// gpt2-large, trec, few-shot: prefix tuning (P-tuning v2) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'trec', 'few-shot', method='prefix_tuning')
