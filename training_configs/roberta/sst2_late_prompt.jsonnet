// The paper's RoBERTa-large setting on SST-2: prompt after layer 12 of 24, 5 vectors from the
// naive generator, the frozen masked-LM head as verbalizer ("terrible" / "great").
// Data: -o '{"train_data_path": ".../train.tsv", "validation_data_path": ".../dev.tsv"}'
local lpt = import '../common/lpt.libsonnet';
local model = 'roberta-large';
local prompt_layer = 12;

{
  dataset_reader: lpt.reader(model, template='{s} . It was <mask> .', max_length=512),
  train_data_path: 'train.tsv',
  validation_data_path: 'dev.tsv',
  model: {
    type: 'late_prompt_classifier',
    text_field_embedder: lpt.embedder(model, prompt_layer),
    encoder: lpt.encoder('late_prompt_roberta', model, prompt_layer),
    label_words: { '0': 'terrible', '1': 'great' },
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] } },
  trainer: lpt.trainer(lr=1e-3, epochs=10),
}
