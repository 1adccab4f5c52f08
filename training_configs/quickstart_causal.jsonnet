// The quickstart for causal decoders (GPT-2, Llama, Mistral, Qwen2): late prompt after half the
// layers, the last real token's final state feeds a linear head. Only the generator and the head
// train. Point the model at your checkpoint, a local folder or a hub name, with -o on the three
// model_name keys (README, "use a Llama, Mistral or Qwen2 model"), or edit `model` below.
//
//   allennlp train training_configs/quickstart_causal.jsonnet -s runs/causal
local lpt = import 'common/lpt.libsonnet';
local here = lpt.dirOf(std.thisFile);
local root = if here == '' then '..' else here + '/..';
local model = 'Qwen/Qwen2-0.5B';  // 24 layers
local prompt_layer = 12;

{
  // SST-2's labels: 0 (negative) and 1 (positive); any other label in a file is an error.
  dataset_reader: lpt.reader(model, max_length=128, labels=['0', '1']),
  train_data_path: root + '/demo_data/sst2_style/train.tsv',
  validation_data_path: root + '/demo_data/sst2_style/dev.tsv',
  model: {
    // AllenNLP's basic_classifier, also reporting macro-F1, per-label F1 and the confusion matrix.
    type: 'lpt_basic_classifier',
    namespace: 'tags',  // where the pretrained-transformer indexer keeps its vocabulary
    text_field_embedder: lpt.embedder(model, prompt_layer),
    // The Llama family has no hidden dropout: the generator's default dropout is then 0.
    seq2vec_encoder: lpt.encoder('late_prompt_causal', model, prompt_layer, generator='mppg'),
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: 16, sorting_keys: ['tokens'] } },
  validation_data_loader: { batch_sampler: { type: 'bucket', batch_size: 64, sorting_keys: ['tokens'], shuffle: false } },
  trainer: lpt.trainer(lr=1e-3, epochs=3),
  evaluation: lpt.evaluation,
}
