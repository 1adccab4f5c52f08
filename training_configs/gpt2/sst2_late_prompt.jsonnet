// The paper's GPT2-large setting on SST-2: prompt after layer 18 of 36, generative scoring of
// " It was terrible ." / " It was great ." (mean NLL of the answer, " ." and eos).
// Data: -o '{"train_data_path": ".../train.tsv", "validation_data_path": ".../dev.tsv"}'
local lpt = import '../common/lpt.libsonnet';
local model = 'gpt2-large';
local prompt_layer = 18;

{
  dataset_reader: lpt.reader(model, template='{s} It was', max_length=256),
  train_data_path: 'train.tsv',
  validation_data_path: 'dev.tsv',
  model: {
    type: 'late_prompt_classifier',
    text_field_embedder: lpt.embedder(model, prompt_layer),
    encoder: lpt.encoder('late_prompt_gpt2', model, prompt_layer),
    label_words: { '0': 'terrible', '1': 'great' },
    answer_suffix: ' .',
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: 8, sorting_keys: ['tokens'] } },
  trainer: lpt.trainer(lr=5e-4, epochs=10, accumulation=4),
}
