// Late prompt tuning of all-MiniLM-L6-v2 (6 layers, installed offline by `make install`) on an
// SST-2-style TSV file: the prompt (5 vectors from the max-pooling generator, MPPG) enters after
// layer 3, the pooled output feeds a linear head. Only the generator and the head train.
// MPPG, not the paper's naive generator: on SST-2 with this model it is 3.6 points better over
// three seeds, at the same cost (docs/RESULTS.md). The paper's configs keep the paper's NPG.
//
//   allennlp train training_configs/quickstart.jsonnet -s runs/quickstart
//   ... -o '{"train_data_path": "data/sst2/train.tsv",
//            "validation_data_path": "data/sst2/dev.tsv"}'
local lpt = import 'common/lpt.libsonnet';
local here = lpt.dirOf(std.thisFile);
local root = if here == '' then '..' else here + '/..';
local model = 'sentence-transformers/all-MiniLM-L6-v2';
local prompt_layer = 3;

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
    seq2vec_encoder: lpt.encoder('late_prompt_roberta', model, prompt_layer, generator='mppg',
                                 extra={ pooling: 'mean' }),
  },
  data_loader: { batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] } },
  validation_data_loader: { batch_sampler: { type: 'bucket', batch_size: 128, sorting_keys: ['tokens'], shuffle: false } },
  trainer: lpt.trainer(lr=1e-3, epochs=3),
  evaluation: lpt.evaluation,
}
