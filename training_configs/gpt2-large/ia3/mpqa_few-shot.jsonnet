// gpt2-large, mpqa, few-shot: (IA)^3 in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mpqa', 'few-shot', method='ia3')
