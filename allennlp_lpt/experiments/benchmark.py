"""
Training-step cost of late prompt tuning against its peers, side by side in one process.

Every method trains a sequence classifier on the same random-weight backbone and the same random
batch: each registered tuning method (`allennlp_lpt/modules/tuning_methods/`: full fine-tuning,
BitFit, and PEFT's LoRA, (IA)^3, prompt tuning and prefix tuning, with the defaults lpt-compare
uses) on HuggingFace's classifier, and late prompt tuning through this package's own AllenNLP
components (the `basic_classifier` path that `allennlp train` runs), without and with the
lower-layer cache. `allennlp lpt-benchmark` is the command-line entry.
"""
import contextlib
import dataclasses
import gc
import json
import logging
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import time
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy
import torch

from allennlp_lpt.experiments.tables import markdown_table

CACHED = "late_prompt_cached"


def methods() -> Tuple[str, ...]:
    """What can be timed: every registered tuning method, and late prompt with its cache."""
    from allennlp_lpt.modules.tuning_methods import method_names

    names = method_names()
    return tuple(names[:1]) + (CACHED,) + tuple(names[1:])


def _is_peft(method: str) -> bool:
    from allennlp_lpt.modules.tuning_methods import PeftMethod, TuningMethod

    return not method.startswith("late_prompt") and issubclass(TuningMethod.by_name(method), PeftMethod)


# The standard configs' shapes: (hidden, layers, heads, intermediate).
SHAPES: Dict[str, Dict[str, Tuple[int, int, int, int]]] = {
    "roberta": {"tiny": (64, 4, 2, 128), "base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)},
    "bert": {"tiny": (64, 4, 2, 128), "base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)},
    "gpt2": {"tiny": (64, 4, 2, 256), "base": (768, 12, 12, 3072), "large": (1280, 36, 20, 5120)},
}
# How many tokens the standard shapes' configs (`build_backbone`) have positions for.
STANDARD_POSITIONS = {"roberta": 512, "bert": 512, "gpt2": 1024}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PEERS = ("fair", "stock")


@dataclasses.dataclass
class Settings:
    family: str = "roberta"
    size: str = "base"
    batch_size: int = 16
    length: int = 128
    device: str = "cpu"
    precision: str = "fp32"
    # Default: every method (`methods()`).
    methods: Tuple[str, ...] = ()
    steps: int = 10
    warmup: int = 3
    prompt_layer: Optional[int] = None
    prompt_length: int = 5
    # The shape of this model (random weights of its config) instead of `family` and `size`.
    model_name: Optional[str] = None
    # "fair": the peers' HF models get the attention kernel and dropout late prompt runs with;
    # "stock": HF's own modules (its default attention kernel, its dropout).
    peers: str = "fair"
    # The dtype the frozen weights are stored in, for late prompt (backbone_dtype) and for the
    # frozen base of PEFT's methods and LoReFT alike; full fine-tuning and BitFit train the
    # base and keep float32.
    backbone_dtype: str = "float32"
    # torch.compile every method: HF models whole, late prompt's two stacks.
    compile: bool = False
    compile_backend: str = "inductor"
    # Count, per method and step, operator calls / kernel launches, dtype conversions,
    # host-to-device copies and synchronisations (torch.profiler, after the timing).
    profile: bool = False

    def __post_init__(self) -> None:
        if self.model_name is not None:
            from allennlp_lpt.core import family_for_config, load_backbone_config

            config = load_backbone_config(self.model_name, key="--model-name")
            family = family_for_config(config, self.model_name, key="--model-name")
            self.family = family.name
            self.size = f"shape of {self.model_name}"
            self._layers = family.num_layers(config)
            self._max_positions = family.max_positions(config)
        else:
            if self.family not in SHAPES:
                raise ValueError(f"--family {self.family}: use one of {', '.join(SHAPES)}")
            if self.size not in SHAPES[self.family]:
                raise ValueError(f"--size {self.size}: use one of {', '.join(SHAPES[self.family])}")
            self._layers = SHAPES[self.family][self.size][1]
            self._max_positions = STANDARD_POSITIONS[self.family]
        if not 1 <= self.length <= self._max_positions:
            model = self.model_name or f"the {self.family} {self.size} shape"
            raise ValueError(
                f"--length {self.length}: {model} has positions for 1 to {self._max_positions} "
                f"tokens; give --length {self._max_positions} or less"
            )
        known = methods()
        self.methods = tuple(self.methods) or known
        unknown = [m for m in self.methods if m not in known]
        if unknown:
            raise ValueError(f"--methods: unknown {unknown}; use any of {', '.join(known)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision {self.precision}: use one of {', '.join(PRECISIONS)}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        layers = self._layers
        if self.prompt_layer is None:
            self.prompt_layer = layers // 2
        if not 1 <= self.prompt_layer <= layers - 1:
            raise ValueError(f"--prompt-layer {self.prompt_layer}: use 1 to {layers - 1}")
        if self.steps < 1:
            raise ValueError("--steps must be at least 1")
        if self.peers not in PEERS:
            raise ValueError(f"--peers {self.peers}: use one of {', '.join(PEERS)}")
        if self.backbone_dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"--backbone-dtype {self.backbone_dtype}: use float32, bfloat16 or float16")
        compute = {"bfloat16": "bf16", "float16": "fp16"}.get(self.backbone_dtype)
        if compute is not None and self.precision != compute:
            raise ValueError(
                f"--backbone-dtype {self.backbone_dtype} stores the frozen weights in the compute "
                f"dtype of --precision {compute}; give --precision {compute} with it"
            )


def build_backbone(settings: Settings, folder: str) -> str:
    """Saves a random-weight base model of the family and size into `folder`."""
    from transformers import AutoModel, BertConfig, GPT2Config, RobertaConfig

    if settings.model_name is not None:
        from allennlp_lpt.core import load_backbone_config

        config = load_backbone_config(settings.model_name, key="--model-name")
        if config.pad_token_id is None:  # HF's sequence classifiers of decoders need one
            config.pad_token_id = config.eos_token_id if config.eos_token_id is not None else 0
        torch.manual_seed(0)
        AutoModel.from_config(config).save_pretrained(folder)
        return folder
    hidden, layers, heads, intermediate = SHAPES[settings.family][settings.size]
    if settings.family == "gpt2":
        config = GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=intermediate,
                            n_positions=1024, vocab_size=50257)
        config.pad_token_id = config.eos_token_id
    elif settings.family == "roberta":
        config = RobertaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=intermediate, vocab_size=50265,
                               max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    else:
        config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=intermediate, vocab_size=30522)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


def _batch(settings: Settings, vocab_size: int, device: torch.device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (settings.batch_size, settings.length), generator=generator)
    labels = torch.randint(0, 2, (settings.batch_size,), generator=generator)
    return ids.to(device), torch.ones_like(ids, dtype=torch.bool).to(device), labels.to(device)


Step = Callable[[], None]


def _autocast(settings: Settings):
    dtype = PRECISIONS[settings.precision]
    if dtype is None:
        return torch.autocast(settings.device, enabled=False)
    return torch.autocast(settings.device, dtype=dtype)


def _training_step(
    settings: Settings, optimizer: torch.optim.Optimizer, compute_loss: Callable[[], torch.Tensor]
) -> Step:
    """One step as GradientDescentTrainer runs it: the loss under autocast, backward, update.
    fp16 needs loss scaling, as the trainer does under `use_amp`; bf16 and fp32 do not (a
    disabled scaler passes the loss and the step through unchanged)."""
    scaler = torch.amp.GradScaler(settings.device, enabled=settings.precision == "fp16")

    def step() -> None:
        with _autocast(settings):
            loss = compute_loss()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def _hf_method(method: str, settings: Settings, folder: str) -> Tuple[torch.nn.Module, Step]:
    """A HuggingFace sequence classifier with `method` applied as its class does it
    (`TuningMethod.apply_to_classifier`), with its default options."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from allennlp_lpt.core import family_for_config
    from allennlp_lpt.core.family import quiet_hf_loading
    from allennlp_lpt.core.whole_models import give_lean_modules
    from allennlp_lpt.modules.tuning_methods import TuningMethod, WholeModelMethod

    # Methods that keep a frozen base (PEFT's, LoReFT) store it as late prompt's is; the
    # whole-model ones train it.
    trains_the_base = issubclass(TuningMethod.by_name(method), WholeModelMethod)
    frozen_dtype = torch.float32 if trains_the_base else getattr(torch, settings.backbone_dtype)
    family = family_for_config(AutoConfig.from_pretrained(folder), folder)
    options = {}
    if settings.peers == "fair" and not family.lean_attention_fits_hf_layers:
        options["attn_implementation"] = "sdpa"  # see give_lean_modules
    with quiet_hf_loading():  # the new classification head's "newly initialized" notice
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=2, torch_dtype=frozen_dtype, **options
        )
    if settings.peers == "fair":
        give_lean_modules(model)
    for parameter in model.parameters():  # the method says what trains
        parameter.requires_grad_(False)
    cls = TuningMethod.by_name(method)
    model = cls.checked({}, key=f"--methods {method}").apply_to_classifier(model, family, folder)
    for parameter in model.parameters():  # what trains stays float32, as late prompt's generator
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    device = torch.device(settings.device)
    model.to(device).train()
    ids, mask, labels = _batch(settings, model.config.vocab_size, device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    forward = torch.compile(model, backend=settings.compile_backend) if settings.compile else model
    return model, _training_step(
        settings, optimizer, lambda: forward(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
    )


def _late_prompt_model(settings: Settings, folder: str, cached: bool) -> torch.nn.Module:
    """This package's components on the `basic_classifier` path `allennlp train` runs: the
    family's late-prompt encoder, NPG, prompt after `settings.prompt_layer`."""
    from allennlp.common import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model

    import allennlp_lpt  # noqa: F401  (registers the components)
    from allennlp_lpt.core import family_for_model
    from allennlp_lpt.modules.seq2vec_encoders.late_prompt_encoder import encoder_for

    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["0", "1"], namespace="labels")
    shared = {"model_name": folder, "prompt_layer": settings.prompt_layer,
              "backbone_dtype": settings.backbone_dtype, "compile": settings.compile,
              "compile_backend": settings.compile_backend}
    lower = {"type": "late_prompt_transformer", **shared, **({"cache": True} if cached else {})}
    return Model.from_params(vocab=vocab, params=Params({
        "type": "basic_classifier",
        "namespace": "tags",
        "text_field_embedder": {"token_embedders": {"tokens": lower}},
        "seq2vec_encoder": {"type": encoder_for(family_for_model(folder)), **shared,
                            "prompt_length": settings.prompt_length, "generator": {"type": "npg"}},
    }))


def _late_prompt_batches(settings: Settings, vocab_size: int, device: torch.device, cached: bool) -> List[Dict]:
    """
    The batches late prompt cycles through. The cached method is timed on a second epoch:
    `epoch_length(...)` distinct batches, each seen once (stored) before the timed steps read
    them back; they carry their rows' keys, computed on the host as the readers' `cache_keys`
    does, so its steps never wait for the GPU.
    """
    from allennlp_lpt.core.cache import RowKeys, instance_key

    batches = []
    for seed in range(epoch_length(CACHED if cached else "late_prompt", settings)):
        ids, mask, labels = _batch(settings, vocab_size, device, seed=seed)
        tokens = {"token_ids": ids, "mask": mask, "type_ids": torch.zeros_like(ids)}
        if cached:
            host_ids = ids.cpu().numpy()
            tokens["row_keys"] = RowKeys(
                tuple(instance_key(row, numpy.zeros_like(row)) for row in host_ids),
                (settings.length,) * settings.batch_size,
            )
        batches.append({"tokens": {"tokens": tokens}, "label": labels})
    return batches


def _late_prompt(settings: Settings, folder: str, cached: bool) -> Tuple[torch.nn.Module, Step]:
    from allennlp.common import Params
    from allennlp.training.optimizers import Optimizer

    model = _late_prompt_model(settings, folder, cached)
    device = torch.device(settings.device)
    model.to(device).train()
    vocab_size = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding)).num_embeddings
    batches = _late_prompt_batches(settings, vocab_size, device, cached)
    position = [0]

    def loss() -> torch.Tensor:
        batch = batches[position[0] % len(batches)]
        position[0] += 1
        return model(**batch)["loss"]

    optimizer = Optimizer.from_params(
        model_parameters=[(n, p) for n, p in model.named_parameters() if p.requires_grad],
        params=Params({"type": "huggingface_adamw", "lr": 1e-3}),
    )
    return model, _training_step(settings, optimizer, loss)


def epoch_length(method: str, settings: Settings) -> int:
    """Distinct batches a method cycles through: one, except the cached method, whose timed
    steps must each read a batch stored in an earlier, untimed pass (a real second epoch)."""
    return settings.steps if method == CACHED else 1


def build_method(method: str, settings: Settings, folder: str) -> Tuple[torch.nn.Module, Step]:
    if method.startswith("late_prompt"):
        return _late_prompt(settings, folder, cached=method == CACHED)
    return _hf_method(method, settings, folder)


def _sync(settings: Settings) -> None:
    if settings.device == "cuda":
        torch.cuda.synchronize()


def time_method(method: str, settings: Settings, folder: str) -> Dict[str, object]:
    """Median step time after warm-up; on CUDA also the peak allocated memory."""
    if settings.device == "cuda":
        # The previous method's model and optimizer must be gone, not merely unreferenced, or
        # they would count in this method's peak.
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model, step = build_method(method, settings, folder)
    # Warm-up; for the cached method also its first epoch over all its batches.
    for _ in range(max(settings.warmup, epoch_length(method, settings))):
        step()
    times = []
    others = OtherProcesses.start()
    for _ in range(settings.steps):
        _sync(settings)
        start = time.perf_counter()
        step()
        _sync(settings)
        times.append(1000 * (time.perf_counter() - start))
    row: Dict[str, object] = {
        "method": method,
        "step_ms": statistics.median(times),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    busy = others.cores_used()
    if busy is not None:
        row["other_processes_cores"] = round(busy, 2)
    if settings.device == "cuda":
        row["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if settings.profile:
        row.update(profile_steps(step, settings))
    del model, step
    return row


class OtherProcesses:
    """How many cores other processes kept busy while a method was timed (Linux only).

    The methods run one after another, so work elsewhere on the machine slows some of them and
    not others and skews every ratio: each row records it. It is the machine's busy CPU time from
    ``/proc/stat`` less this process's own, over the wall time.
    """

    def __init__(self, machine: Optional[float], own: float, wall: float, stat: str = "/proc/stat") -> None:
        self.machine, self.own, self.wall, self.stat = machine, own, wall, stat

    @staticmethod
    def machine_busy_seconds(stat: str = "/proc/stat") -> Optional[float]:
        """CPU seconds all cores spent busy since boot (the first line of `/proc/stat`)."""
        try:
            with open(stat) as handle:
                fields = [float(value) for value in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @classmethod
    def start(cls, stat: str = "/proc/stat") -> "OtherProcesses":
        return cls(cls.machine_busy_seconds(stat), time.process_time(), time.perf_counter(), stat)

    def cores_used(self) -> Optional[float]:
        machine = self.machine_busy_seconds(self.stat)
        wall = time.perf_counter() - self.wall
        if machine is None or self.machine is None or wall <= 0:
            return None
        others = (machine - self.machine) - (time.process_time() - self.own)
        return max(0.0, others / wall)


def busy_rows(rows: List[Dict[str, object]], threshold: float = 0.25) -> List[Dict[str, object]]:
    """CPU rows timed while other processes kept at least ``threshold`` of a core busy."""
    return [
        row for row in rows
        if row.get("device") == "cpu" and float(row.get("other_processes_cores", 0.0)) >= threshold  # type: ignore[arg-type]
    ]


PROFILE_STEPS = 3


def profile_steps(step: Step, settings: Settings) -> Dict[str, float]:
    """
    Per training step, averaged over `PROFILE_STEPS` steps under `torch.profiler`: operator
    calls (CPU) or kernel launches (CUDA), dtype-conversion copies (`aten::_to_copy`),
    host-to-device copies and synchronisations.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if settings.device == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(PROFILE_STEPS):
            step()
        _sync(settings)
    counts = {"launches": 0, "dtype_copies": 0, "host_to_device": 0, "syncs": 0}
    for event in profiler.key_averages():
        name = event.key
        if settings.device == "cuda":
            if name in ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel"):
                counts["launches"] += event.count
        elif name.startswith("aten::"):
            counts["launches"] += event.count
        if name == "aten::_to_copy":
            counts["dtype_copies"] += event.count
        if "HtoD" in name:
            counts["host_to_device"] += event.count
        if "Synchronize" in name:
            counts["syncs"] += event.count
    return {f"per_step_{key}": value / PROFILE_STEPS for key, value in counts.items()}


def peak_rss_mib() -> float:
    """
    This process's peak resident memory. Linux's VmHWM belongs to the process image, whereas
    getrusage's ru_maxrss survives exec and would report the spawning parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_child(method: str, settings: Settings, folder: str, queue) -> None:
    try:
        with quiet_allennlp_logging():
            _, step = build_method(method, settings, folder)
        for _ in range(2):
            step()
        queue.put(peak_rss_mib())
    except Exception as error:  # reported in the parent's row
        queue.put(f"error: {error}")


def in_fresh_process(target: Callable[..., None], *args: object) -> object:
    """Runs `target(*args, queue)` in a fresh (spawned) process and returns what it puts in
    `queue`: how a peak memory is measured without the caller's own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def peak_rss(method: str, settings: Settings, folder: str) -> object:
    """CPU: the peak resident memory of a fresh process that builds the method and trains."""
    return in_fresh_process(_peak_rss_child, method, settings, folder)


def peft_problem() -> Optional[str]:
    """None when peft imports; otherwise why not (missing, or built for another transformers)."""
    try:
        import peft  # noqa: F401
    except ImportError:
        return "peft is not installed (pip install -r requirements.txt)"
    except Exception as error:  # e.g. a peft release that needs a newer transformers
        return f"peft does not import: {type(error).__name__}: {error}"
    return None


@contextlib.contextmanager
def quiet_allennlp_logging() -> Iterator[None]:
    """AllenNLP logs every parameter of every component it builds at INFO: pages per method
    here, none of it a benchmark's reader can act on. Warnings and errors still show."""
    allennlp_logger = logging.getLogger("allennlp")
    level = allennlp_logger.level
    allennlp_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        allennlp_logger.setLevel(level)


def run(settings: Settings, *, progress: Callable[[str], None] = print) -> List[Dict[str, object]]:
    with quiet_allennlp_logging():
        return _run(settings, progress)


def _run(settings: Settings, progress: Callable[[str], None]) -> List[Dict[str, object]]:
    folder = tempfile.mkdtemp(prefix="lpt-benchmark-")
    rows: List[Dict[str, object]] = []
    try:
        build_backbone(settings, folder)
        common = {
            "device": settings.device, "precision": settings.precision, "family": settings.family,
            "size": settings.size, "batch": settings.batch_size, "length": settings.length,
            "prompt_layer": settings.prompt_layer, "prompt_length": settings.prompt_length,
            "steps": settings.steps, "peers": settings.peers,
            "backbone_dtype": settings.backbone_dtype, "compile": settings.compile,
        }
        for method in settings.methods:
            problem = peft_problem() if _is_peft(method) else None
            if problem is not None:
                rows.append({"method": method, **common, "error": problem})
                progress(f"{method}: skipped, {problem}")
                continue
            progress(f"{method}: timing {settings.steps} steps after {settings.warmup} warm-up steps")
            try:
                row = time_method(method, settings, folder)
            except Exception as error:  # one method's failure must not cost the others' figures
                message = f"failed: {type(error).__name__}: {error}"
                progress(f"{method}: {message}\n{traceback.format_exc()}")
                rows.append({"method": method, **common, "error": message})
                continue
            if settings.device == "cpu":
                rss = peak_rss(method, settings, folder)
                if isinstance(rss, str):
                    row["error"] = rss
                else:
                    row["peak_mem_mib"] = rss
            rows.append({**row, **common})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    full = next((r for r in rows if r["method"] == "full" and "step_ms" in r), None)
    for row in rows:
        if full is not None and "step_ms" in row:
            row["speedup_vs_full"] = float(full["step_ms"]) / float(row["step_ms"])  # type: ignore[arg-type]
            if "peak_mem_mib" in row and "peak_mem_mib" in full:
                row["memory_vs_full"] = float(row["peak_mem_mib"]) / float(full["peak_mem_mib"])  # type: ignore[arg-type]
    return rows


def table(rows: List[Dict[str, object]]) -> str:
    """The rows as markdown: times, memory and parameters with ratios to full fine-tuning, the
    per-step profile where it was taken, and the conditions."""
    def cells(row: Dict[str, object]) -> List[object]:
        if "step_ms" not in row:
            return [row["method"], row.get("error", "-"), "", "", "", ""]
        return [
            row["method"], f"{row['step_ms']:.1f}",
            f"{row['speedup_vs_full']:.2f}x" if "speedup_vs_full" in row else "-",
            f"{row['peak_mem_mib']:.0f}" if "peak_mem_mib" in row else "-",
            f"{row['memory_vs_full']:.2f}x" if "memory_vs_full" in row else "-",
            f"{row['trainable_params']:,}",
        ]

    text = markdown_table(
        ["method", "step ms", "speed-up vs full", "peak MiB", "memory vs full", "trainable params"],
        [cells(row) for row in rows],
    )
    profiled = [row for row in rows if "per_step_launches" in row]
    if profiled:
        device = next((row.get("device") for row in rows), "cpu")
        what = "kernel launches" if device == "cuda" else "operator calls"
        text += "\n" + markdown_table(
            ["method", what, "dtype copies", "host-to-device copies", "syncs", "(per step)"],
            [[row["method"], f"{row['per_step_launches']:.0f}", f"{row['per_step_dtype_copies']:.0f}",
              f"{row['per_step_host_to_device']:.0f}", f"{row['per_step_syncs']:.0f}", ""] for row in profiled],
        )
    if rows:
        first = rows[0]
        text += "\n" + (
            f"Peers: {first.get('peers', 'fair')} (fair: the HF models run the same lean attention and "
            f"dropout as late prompt; stock: HF's own modules). Frozen weights: "
            f"{first.get('backbone_dtype', 'float32')}. Compiled: {'yes' if first.get('compile') else 'no'}. "
            f"late_prompt_cached is timed on a second epoch: each timed batch was stored in an "
            f"earlier, untimed pass.\n"
        )
        busy = busy_rows(rows)
        if busy:
            text += (
                "\nWarning: other processes were using the CPU while these methods were timed ("
                + ", ".join(f"{row['method']}: {row['other_processes_cores']} cores" for row in busy)
                + f", of {os.cpu_count()}); ratios measured under other load are not comparable.\n"
            )
    return text


def write_json_lines(rows: List[Dict[str, object]], path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
