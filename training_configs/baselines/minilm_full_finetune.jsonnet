// Baseline for the quickstart: full fine-tuning of all-MiniLM-L6-v2 (every weight trains), mean
// pooling and a linear head, through AllenNLP's own pretrained_transformer embedder. That embedder
// does not know the offline MiniLM package: give its folder as model_name (scripts/accuracy_sst2.py does).
local lpt = import '../common/lpt.libsonnet';
local model = 'sentence-transformers/all-MiniLM-L6-v2';

{
  dataset_reader: lpt.reader(model, max_length=128),
  train_data_path: 'data/sst2/train.tsv',
  validation_data_path: 'data/sst2/dev.tsv',
  model: {
    type: 'basic_classifier',
    namespace: 'tags',
    text_field_embedder: { token_embedders: { tokens: {
      type: 'pretrained_transformer', model_name: model, train_parameters: true } } },
    seq2vec_encoder: { type: 'bag_of_embeddings', embedding_dim: 384, averaged: true },
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] } },
  validation_data_loader: { batch_sampler: { type: 'bucket', batch_size: 128, sorting_keys: ['tokens'], shuffle: false } },
  trainer: lpt.trainer(lr=5e-5, epochs=1),
}
