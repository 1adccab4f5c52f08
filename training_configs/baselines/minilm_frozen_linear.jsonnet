// Baseline for the quickstart: all-MiniLM-L6-v2 frozen, mean pooling, only a linear head trains.
local full = import 'minilm_full_finetune.jsonnet';

full + {
  model+: { text_field_embedder+: { token_embedders+: { tokens+: { train_parameters: false } } } },
  trainer+: { optimizer+: { lr: 1e-3 } },
}
