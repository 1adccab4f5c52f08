// roberta-large, mnli, full-data: prompt tuning (input soft prompt) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'mnli', 'full-data', method='prompt_tuning')
