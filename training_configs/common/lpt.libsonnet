// Shared pieces of the late-prompt configs. Each experiment file composes these in a few lines.
{
  // The folder of the file that imports this one (so data paths can be relative to the config).
  dirOf(file):: std.join('/', std.split(file, '/')[:std.length(std.split(file, '/')) - 1]),

  // AdamW as the authors ran it: weight decay 0.1, none on biases and norm weights (LayerNorm,
  // layer_norm, input_layernorm, q_norm, attn_norm, ... : every family's spelling; GPT-2's ln_*).
  // One regex for every family's names: AllenNLP warns of each regex that matches nothing that
  // trains, and a pattern per family would warn on every run (allennlp_lpt/logs.py keeps a copy).
  optimizer(lr):: {
    type: 'huggingface_adamw',
    lr: lr,
    eps: 1e-8,
    weight_decay: 0.1,
    parameter_groups: [
      [['bias|[Nn]orm\\.weight|ln_.*\\.weight'], { weight_decay: 0.0 }],
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
    // Random states in every checkpoint: a run recovered with --recover matches an uninterrupted one.
    // Trainable and total parameters in the log and in parameter_counts.json.
    // The best validation epoch's confusion matrix beside metrics.json (confusion_matrix.csv, .png).
    callbacks: [{ type: 'lpt_rng_state' }, { type: 'lpt_parameter_counts' }, { type: 'lpt_confusion_matrix' }],
  },

  // `allennlp evaluate ... --output-file X.json` also writes X_confusion_matrix.csv and .png.
  evaluation:: { type: 'lpt_confusion_matrix' },

  // `labels`: the label set, where it is known; a row with another label is then an error.
  // `cache_keys`: with the embedder's `cache`, key each instance once on the host (README, Speed).
  // `max_length`: null is the reader's default, 512 or the model's position limit if lower.
  reader(model_name, template=null, text_columns=['sentence'], max_length=null, labels=null,
         cache_keys=false):: {
    type: 'lpt_tsv',
    model_name: model_name,
    text_columns: text_columns,
    [if template != null then 'template']: template,
    [if max_length != null then 'max_length']: max_length,
    [if labels != null then 'labels']: labels,
    [if cache_keys then 'cache_keys']: true,
  },

  // The frozen lower layers (embedder) and the generator plus upper layers (encoder).
  // `cache`: store the lower layers' states (pair it with the reader's `cache_keys`).
  embedder(model_name, prompt_layer, cache=false):: {
    token_embedders: {
      tokens: { type: 'late_prompt_transformer', model_name: model_name, prompt_layer: prompt_layer }
              + (if cache then { cache: true } else {}),
    },
  },
  encoder(type, model_name, prompt_layer, prompt_length=5, generator='npg', extra={}):: {
    type: type,
    model_name: model_name,
    prompt_layer: prompt_layer,
    prompt_length: prompt_length,
    generator: { type: generator },
  } + extra,

  // ---- the paper's experiments (docs/METHOD.md, training_configs/README.md) -----------------
  // Where the data is read from, unless -o overrides train/validation/test_data_path:
  //   full data: data/original/TASK/{train,dev}.tsv, test = the task's test file there
  //   few-shot:  data/k-shot/TASK/K-SEED/{train,dev}.tsv (written by `allennlp lpt-few-shot`),
  //              test = the task's test file in data/original/TASK/
  // testFile and metric mirror allennlp_lpt/data/tasks.py (test_files[0], metric), the source;
  // tests/test_training_configs.py checks that they agree.
  testFile:: { 'sst-2': 'dev.tsv', mnli: 'dev_matched.tsv', mrpc: 'dev.tsv', qnli: 'dev.tsv',
               qqp: 'dev.tsv', rte: 'dev.tsv', mr: 'test.tsv', mpqa: 'test.tsv', subj: 'test.tsv',
               trec: 'test.tsv' },
  metric:: { mrpc: 'acc_and_f1', qqp: 'acc_and_f1' },
  recipes:: {
    // RoBERTa-large: prompt after layer 12 of 24, masked-LM verbalizer.
    'roberta-large': { encoder: 'late_prompt_roberta', prompt_layer: 12, lr: 1e-3, batch: 32,
                       accumulation: 1, max_length: 512 },
    // GPT2-large: prompt after layer 18 of 36, generative scoring; batch 8 x accumulation 4.
    'gpt2-large': { encoder: 'late_prompt_gpt2', prompt_layer: 18, lr: 5e-4, batch: 8,
                    accumulation: 4, max_length: 256 },
  },

  // Few-shot: k = 100 examples in all, data seed 13 (lpt-sweep --data-seeds moves to the others).
  // Another tuning method in place of late prompt: `allennlp lpt-compare CONFIG --methods ...`
  // (with --configs-only it writes the swapped configs for `allennlp train`).
  experiment(model, task, setting, k=100, seed=13, generator='npg', prompt_length=5):: (
    local recipe = $.recipes[model];
    local few_shot = setting == 'few-shot';
    local metric = if std.objectHas($.metric, task) then $.metric[task] else 'accuracy';
    local data = if few_shot then 'data/k-shot/' + task + '/' + k + '-' + seed else 'data/original/' + task;
    {
      dataset_reader: { type: 'lpt_task', model_name: model, task: task, max_length: recipe.max_length },
      train_data_path: data + '/train.tsv',
      validation_data_path: data + '/dev.tsv',
      test_data_path: 'data/original/' + task + '/' + $.testFile[task],
      evaluate_on_test: true,
      model: {
        type: 'late_prompt_classifier',
        task: task,
        text_field_embedder: $.embedder(model, recipe.prompt_layer),
        encoder: $.encoder(recipe.encoder, model, recipe.prompt_layer, prompt_length, generator),
      },
      data_loader: {
        batch_sampler: { type: 'bucket', batch_size: recipe.batch, sorting_keys: ['tokens'] },
        // Few-shot: 1,000 optimizer steps, dev every 100 (an "epoch" is 100 steps here).
        [if few_shot then 'batches_per_epoch']: 100 * recipe.accumulation,
      },
      // No shuffling in validation: a --recover replay of the data loading stays exact.
      validation_data_loader: { batch_sampler: { type: 'bucket', batch_size: 64, sorting_keys: ['tokens'], shuffle: false } },
      trainer: $.trainer(recipe.lr, 10, recipe.accumulation) + { validation_metric: '+' + metric },
      evaluation: $.evaluation,
      random_seed: 42,
      numpy_seed: 42,
      pytorch_seed: 42,
    }
  ),
}
