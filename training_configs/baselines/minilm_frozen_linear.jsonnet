// Baseline for the quickstart: all-MiniLM-L6-v2 frozen (AllenNLP's own pretrained_transformer
// embedder, nothing of it trained), the mean of its final states, a linear head: only the head
// trains. The quickstart's data, reader and trainer.
local quickstart = import '../quickstart.jsonnet';

quickstart + {
  model+: {
    text_field_embedder: {
      token_embedders: {
        tokens: { type: 'pretrained_transformer', model_name: 'sentence-transformers/all-MiniLM-L6-v2', train_parameters: false },
      },
    },
    seq2vec_encoder: { type: 'bag_of_embeddings', embedding_dim: 384, averaged: true },
  },
}
