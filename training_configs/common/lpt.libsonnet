// Shared pieces of the late-prompt configs. Each experiment file composes these in a few lines.
{
  // The folder of the file that imports this one (so data paths can be relative to the config).
  dirOf(file):: std.join('/', std.split(file, '/')[:std.length(std.split(file, '/')) - 1]),

  // AdamW as the authors ran it: weight decay 0.1, none on biases and LayerNorm weights.
  optimizer(lr):: {
    type: 'huggingface_adamw',
    lr: lr,
    eps: 1e-8,
    weight_decay: 0.1,
    parameter_groups: [
      [['bias', 'LayerNorm\\.weight', 'layer_norm\\.weight', 'ln_.*\\.weight'], { weight_decay: 0.0 }],
    ],
  },

  trainer(lr, epochs, accumulation=1, patience=null):: {
    optimizer: $.optimizer(lr),
    learning_rate_scheduler: { type: 'linear_with_warmup_fraction', warmup_fraction: 0.06 },
    grad_clipping: 1.0,
    num_epochs: epochs,
    num_gradient_accumulation_steps: accumulation,
    validation_metric: '+accuracy',
    [if patience != null then 'patience']: patience,
    cuda_device: -1,  // -o '{"trainer.cuda_device": 0}' for a GPU
  },

  reader(model_name, template=null, text_columns=['sentence'], max_length=512):: {
    type: 'lpt_tsv',
    model_name: model_name,
    text_columns: text_columns,
    [if template != null then 'template']: template,
    max_length: max_length,
  },

  // The frozen lower layers (embedder) and the generator plus upper layers (encoder).
  embedder(model_name, prompt_layer):: {
    token_embedders: {
      tokens: { type: 'late_prompt_transformer', model_name: model_name, prompt_layer: prompt_layer },
    },
  },
  encoder(type, model_name, prompt_layer, prompt_length=5, generator='npg', extra={}):: {
    type: type,
    model_name: model_name,
    prompt_layer: prompt_layer,
    prompt_length: prompt_length,
    generator: { type: generator },
  } + extra,
}
