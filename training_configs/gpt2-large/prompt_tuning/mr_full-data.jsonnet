// gpt2-large, mr, full-data: prompt tuning (input soft prompt) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('gpt2-large', 'mr', 'full-data', method='prompt_tuning')
