"""The benchmark's mechanics on a tiny backbone (its figures come from real runs, not tests)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from allennlp_lpt.experiments import benchmark
from allennlp_lpt.experiments.benchmark import Settings, run, table
from config_swap import ROOT


def test_every_method_runs_and_reports_ratios_to_full(monkeypatch):
    # A child process per method measures peak memory on the CPU: measured for real for one
    # method (late prompt), stubbed for the others to keep the test short.
    real_peak_rss = benchmark.peak_rss
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: (
        real_peak_rss(method, settings, folder) if method == "late_prompt" else 100.0))
    rows = run(Settings(family="roberta", size="tiny", batch_size=2, length=8, steps=1, warmup=1),
               progress=lambda message: None)
    by_method = {row["method"]: row for row in rows}
    assert list(by_method) == list(benchmark.methods())
    assert by_method["full"]["speedup_vs_full"] == 1.0
    assert not [row for row in rows if "error" in row], [row.get("error") for row in rows]
    assert 50 < by_method["late_prompt"]["peak_mem_mib"] != 100.0  # a whole Python process
    for row in rows:
        for key in ("method", "step_ms", "peak_mem_mib", "trainable_params", "device", "precision",
                    "family", "size", "batch", "length", "other_processes_cores"):
            assert key in row, (row["method"], key)
    # Only the generator and the head train in late prompt tuning; everything in full FT.
    assert by_method["late_prompt"]["trainable_params"] == by_method["late_prompt_cached"]["trainable_params"]
    assert by_method["late_prompt"]["trainable_params"] < by_method["full"]["trainable_params"] / 10
    assert "| late_prompt_cached |" in table(rows)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_other_families(monkeypatch, family):
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    rows = run(Settings(family=family, size="tiny", batch_size=2, length=8, steps=1, warmup=1,
                        methods=("full", "lora", "late_prompt")), progress=lambda message: None)
    assert [row["method"] for row in rows] == ["full", "lora", "late_prompt"]
    # A method that crashed would be an error row in its place: there must be none.
    assert not [row for row in rows if "error" in row], [row.get("error") for row in rows]
    assert all(row["step_ms"] > 0 for row in rows)


def test_without_peft_the_peft_rows_say_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # what Python does for a missing package
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    rows = run(Settings(size="tiny", batch_size=2, length=8, steps=1, warmup=1,
                        methods=("full", "lora")), progress=lambda message: None)
    assert "peft is not installed" in rows[1]["error"]
    assert "peft is not installed" in table(rows)


def test_a_failing_method_becomes_an_error_row_and_the_others_still_run(monkeypatch):
    real_build = benchmark.build_method

    def build(method, settings, folder):
        if method == "lora":
            raise RuntimeError("CUDA out of memory")
        return real_build(method, settings, folder)

    monkeypatch.setattr(benchmark, "build_method", build)
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    messages = []
    rows = run(Settings(size="tiny", batch_size=2, length=8, steps=1, warmup=1,
                        methods=("full", "lora", "late_prompt")), progress=messages.append)
    assert [row["method"] for row in rows] == ["full", "lora", "late_prompt"]
    assert rows[1]["error"] == "failed: RuntimeError: CUDA out of memory"
    assert "step_ms" in rows[2] and rows[2]["speedup_vs_full"] > 0
    assert any("Traceback" in message for message in messages)
    assert "| lora | failed: RuntimeError: CUDA out of memory |" in table(rows)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_train(monkeypatch, precision):
    """fp16 goes through a GradScaler as under `use_amp`; the late-prompt generator must move."""
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    settings = Settings(size="tiny", batch_size=2, length=8, steps=1, warmup=1, precision=precision)
    folder = _tiny_backbone()
    model, step = benchmark.build_method("late_prompt", settings, folder)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(3):
        step()
    for name, parameter in model.named_parameters():
        if name in before:
            assert parameter.dtype == torch.float32 and bool(torch.isfinite(parameter).all()), name
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)


def test_bad_settings():
    with pytest.raises(ValueError, match="--prompt-layer 4: use 1 to 3"):
        Settings(size="tiny", prompt_layer=4)
    with pytest.raises(ValueError, match="--methods: unknown"):
        Settings(methods=("adapter",))


def test_the_subcommand_writes_json_lines_with_a_real_peak_rss(tmp_path):
    output = tmp_path / "bench.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "allennlp", "lpt-benchmark", "--size", "tiny", "--batch-size", "2",
         "--length", "8", "--steps", "1", "--warmup", "1", "--methods", "full,late_prompt",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["method"] for row in rows] == ["full", "late_prompt"]
    assert all(row["peak_mem_mib"] > 50 for row in rows)  # a whole Python process with torch
    assert "| full |" in done.stdout
    # Not pages of AllenNLP's parameter log: only the progress lines and the table.
    assert "allennlp.common.params" not in done.stderr, done.stderr[-2000:]


def test_peak_rss_is_the_child_process_own_peak():
    """The parent's own peak (a 1 GiB tensor here) must not leak into a method's figure."""
    ballast = torch.ones(256 * 2**20)  # 1 GiB of float32
    parent_peak = benchmark.peak_rss_mib()
    child_peak = benchmark.peak_rss("full", Settings(size="tiny", batch_size=2, length=8), _tiny_backbone())
    del ballast
    assert parent_peak > 1024
    assert 50 < child_peak < parent_peak - 512


def _tiny_backbone():
    import tempfile

    folder = tempfile.mkdtemp()
    return benchmark.build_backbone(Settings(size="tiny"), folder)


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
@pytest.mark.parametrize("method", ["full", "prompt_tuning", "prefix_tuning", "lora"])
def test_fair_peers_compute_what_stock_peers_compute(tmp_path, family, method):
    """The fair benchmark's peers run the late-prompt stacks' lean attention and dropout modules:
    the same logits as HF's own modules (prefix tuning's keys and values included)."""
    import copy

    import peft
    from transformers import AutoModelForSequenceClassification

    from allennlp_lpt.core import family_for_model
    from allennlp_lpt.core.whole_models import give_lean_modules
    from allennlp_lpt.modules.tuning_methods.prefix_tuning import PrefixTuning

    settings = Settings(family=family, size="tiny")
    folder = benchmark.build_backbone(settings, str(tmp_path))
    torch.manual_seed(0)
    stock = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    fair = copy.deepcopy(stock)
    give_lean_modules(fair)
    models = []
    for model in (stock, fair):
        if method == "prefix_tuning":
            # The package's method, as the benchmark applies it: PEFT 0.21.2 hands the prefix
            # only to a classifier whose forward names past_key_values.
            torch.manual_seed(1)
            model = PrefixTuning(num_virtual_tokens=4).apply_to_classifier(model, family_for_model(folder), folder)
        elif method != "full":
            task = peft.TaskType.SEQ_CLS
            config = {
                "prompt_tuning": lambda: peft.PromptTuningConfig(task_type=task, num_virtual_tokens=4),
                "lora": lambda: peft.LoraConfig(task_type=task, r=4, target_modules=["c_attn"] if family == "gpt2"
                                                else ["query", "value"], fan_in_fan_out=family == "gpt2"),
            }[method]()
            torch.manual_seed(1)
            model = peft.get_peft_model(model, config)
            if method == "lora":  # LoRA starts as the identity: move B off zero to test its path
                for name, parameter in model.named_parameters():
                    if "lora_B" in name:
                        torch.manual_seed(2)
                        parameter.data.normal_()
        models.append(model.eval())
    ids = torch.randint(5, 500, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    with torch.no_grad():
        expected, got = (model(input_ids=ids, attention_mask=mask).logits for model in models)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    lean = {"roberta": "LeanSelfAttention", "gpt2": "LeanGPT2Attention"}[family]
    assert any(type(module).__name__ == lean for module in models[1].modules())
    assert not any(type(module) is torch.nn.Dropout for module in fair.modules())  # all FastDropout


def test_compile_profile_and_a_sixteen_bit_frozen_base(monkeypatch):
    """--compile reaches every method (a counting backend here), --profile adds per-step
    counts, --backbone-dtype stores late prompt's backbone and the PEFT base in bfloat16."""
    from torch._dynamo import register_backend

    compiled = []

    @register_backend
    def lpt_bench_counting(graph_module, example_inputs):
        compiled.append(1)
        return graph_module.forward

    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    torch._dynamo.reset()
    rows = run(Settings(size="tiny", batch_size=2, length=8, steps=2, warmup=1, methods=("full", "late_prompt"),
                        compile=True, compile_backend="lpt_bench_counting", profile=True),
               progress=lambda message: None)
    assert not [row for row in rows if "error" in row], rows
    assert compiled  # the graphs went through the compiler
    for row in rows:
        assert row["per_step_launches"] > 0 and "per_step_dtype_copies" in row and row["compile"] is True
    assert "operator calls" in table(rows) and "Compiled: yes" in table(rows)

    built = {}
    real = benchmark.build_method

    def keep(method, settings, folder):
        built[method] = real(method, settings, folder)
        return built[method]

    monkeypatch.setattr(benchmark, "build_method", keep)
    rows = run(Settings(size="tiny", batch_size=2, length=8, steps=1, warmup=1, methods=("lora", "late_prompt"),
                        backbone_dtype="bfloat16", precision="bf16"), progress=lambda message: None)
    assert not [row for row in rows if "error" in row], rows
    for method, (model, _) in built.items():
        frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
        trained = {p.dtype for p in model.parameters() if p.requires_grad}
        assert frozen == {torch.bfloat16} and trained == {torch.float32}, (method, frozen, trained)


def test_the_cached_method_is_timed_on_a_second_epoch():
    settings = Settings(size="tiny", steps=5)
    assert benchmark.epoch_length("late_prompt_cached", settings) == 5  # five distinct batches
    assert benchmark.epoch_length("late_prompt", settings) == 1


def test_a_sixteen_bit_frozen_base_needs_its_compute_precision():
    with pytest.raises(ValueError, match="give --precision bf16 with it"):
        Settings(size="tiny", backbone_dtype="bfloat16", precision="fp32")


# What each family's model must get from `--model-name`: its own late-prompt encoder and its
# own attention projections as LoRA targets.
FAMILY_CHOICES = {
    "bert": ("late_prompt_roberta", {"query", "value"}),
    "roberta": ("late_prompt_roberta", {"query", "value"}),
    "gpt2": ("late_prompt_causal", {"c_attn"}),
    "llama": ("late_prompt_causal", {"q_proj", "v_proj"}),
    "mistral": ("late_prompt_causal", {"q_proj", "v_proj"}),
    "qwen2": ("late_prompt_causal", {"q_proj", "v_proj"}),
}


@pytest.mark.parametrize("model_type", list(FAMILY_CHOICES))
def test_model_name_picks_the_family_encoder_and_lora_targets(tiny_models, model_type, tmp_path):
    from allennlp.modules import Seq2VecEncoder

    encoder, targets = FAMILY_CHOICES[model_type]
    settings = Settings(model_name=tiny_models[model_type], batch_size=2, length=8, steps=1, warmup=1)
    folder = benchmark.build_backbone(settings, str(tmp_path))
    lora, step = benchmark.build_method("lora", settings, folder)
    step()
    wrapped = {name.rsplit(".", 1)[-1] for name, module in lora.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == targets
    late, step = benchmark.build_method("late_prompt", settings, folder)
    step()
    assert isinstance(late._seq2vec_encoder, Seq2VecEncoder.by_name(encoder))


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2"])
def test_every_method_runs_on_llama_family_shapes(tiny_models, monkeypatch, model_type):
    """Prefix tuning included: PEFT's tuples become the cache these models take in training."""
    monkeypatch.setattr(benchmark, "peak_rss", lambda method, settings, folder: 100.0)
    rows = run(Settings(model_name=tiny_models[model_type], batch_size=2, length=8, steps=1, warmup=1),
               progress=lambda message: None)
    assert [row["method"] for row in rows] == list(benchmark.methods())
    assert not [row for row in rows if "error" in row], [row.get("error") for row in rows]


def test_cpu_time_of_other_processes_is_recorded_and_warned_about(tmp_path, monkeypatch):
    """The machine's busy time from /proc/stat (user, nice, system, irq, softirq, steal; not idle
    and iowait) less this process's own CPU time, over the wall time."""
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")
    #                 user nice system idle iowait irq softirq steal
    stat.write_text(f"cpu  {100 * ticks} 0 {50 * ticks} {900 * ticks} {10 * ticks} 0 0 0 0 0\ncpu0 ...\n")
    assert benchmark.OtherProcesses.machine_busy_seconds(str(stat)) == pytest.approx(150)
    clock = {"wall": 1000.0, "own": 20.0}
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(benchmark.time, "process_time", lambda: clock["own"])
    timing = benchmark.OtherProcesses.start(str(stat))
    # 10 s later: the machine was busy 18 more CPU seconds, 3 of them this process's own.
    stat.write_text(f"cpu  {112 * ticks} 0 {56 * ticks} {905 * ticks} {10 * ticks} 0 0 0 0 0\n")
    clock.update(wall=1010.0, own=23.0)
    assert timing.cores_used() == pytest.approx(1.5)
    assert benchmark.OtherProcesses.start(str(tmp_path / "absent")).cores_used() is None

    rows = [{"method": "full", "step_ms": 10.0, "trainable_params": 1, "device": "cpu",
             "other_processes_cores": 0.0},
            {"method": "late_prompt", "step_ms": 5.0, "trainable_params": 1, "device": "cpu",
             "other_processes_cores": 1.5}]
    warning = table(rows).split("Warning: other processes were using the CPU")[1]
    assert "late_prompt: 1.5 cores" in warning and "full" not in warning
    assert "Warning" not in table(rows[:1])
