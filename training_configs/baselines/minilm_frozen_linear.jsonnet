// Baseline for the quickstart: all-MiniLM-L6-v2 frozen, mean pooling, only a linear head trains
// (full fine-tuning with no weight of the backbone trained).
local full = import '../methods/quickstart_full.jsonnet';

full + {
  model+: { text_field_embedder+: { token_embedders+: { tokens+: { train_parameters: false } } } },
  trainer+: { optimizer+: { lr: 1e-3 } },
}
