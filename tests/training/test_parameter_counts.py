"""Every shipped config logs its trainable and total parameters at the start of training and
writes them beside the metrics, each tensor counted once."""
import json
import os

from allennlp.commands.train import train_model_from_file
from transformers import AutoModel

from config_swap import CONFIGS, tiny_config


def test_a_run_reports_its_trainable_and_total_parameters(tiny_models, tmp_path):
    config = tiny_config(os.path.join(CONFIGS, "quickstart.jsonnet"), tiny_models, str(tmp_path),
                         family="roberta", epochs=1)
    model = train_model_from_file(config, str(tmp_path / "run"))
    counts = json.loads((tmp_path / "run" / "parameter_counts.json").read_text())
    # The frozen backbone once (HF's own count of the encoder the stacks run), plus what trains.
    backbone = sum(p.numel() for p in AutoModel.from_pretrained(tiny_models["roberta"], add_pooling_layer=False).parameters())
    trained = sum(p.numel() for name, p in model.named_parameters()
                  if name.startswith(("_seq2vec_encoder.generator.", "_classification_layer.")))
    assert counts == {"trainable": trained, "total": backbone + trained}
    log = (tmp_path / "run" / "out.log").read_text()  # what `allennlp train` shows
    assert f"trainable params: {trained:,} || all params: {backbone + trained:,}" in log
