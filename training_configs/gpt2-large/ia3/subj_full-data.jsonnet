// gpt2-large, subj, full-data: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'subj', 'full-data', method='ia3')
