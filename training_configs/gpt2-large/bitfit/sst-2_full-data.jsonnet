// gpt2-large, sst-2, full-data: BitFit (biases only) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'sst-2', 'full-data', method='bitfit')
