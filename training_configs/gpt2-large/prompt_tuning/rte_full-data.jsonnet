// gpt2-large, rte, full-data: prompt tuning (input soft prompt) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'rte', 'full-data', method='prompt_tuning')
