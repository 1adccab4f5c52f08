// gpt2-large, qnli, few-shot: BitFit (biases only) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'qnli', 'few-shot', method='bitfit')
