// roberta-large, qqp, few-shot: prompt tuning (input soft prompt) in place of late prompt, the paper's recipe otherwise.
(import '../../common/lpt.libsonnet').experiment('roberta-large', 'qqp', 'few-shot', method='prompt_tuning')
