import argparse
import inspect
import json
import os
import tarfile
import tempfile
from typing import Any

import torch
from allennlp.commands.subcommand import Subcommand
from allennlp.common import Params, Registrable
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model

def restores_from_model_name(type_name: str) -> bool:
    """Whether the component registered as `type_name` (in any AllenNLP registry) can leave its
    frozen weights out of archives: its constructor takes `save_backbone`. Derived from the
    components themselves, so a new one (a family's encoder, a tuning method's embedder) is
    found without being listed."""
    for registry in Registrable._registry.values():  # type: ignore[attr-defined]
        entry = registry.get(type_name)
        if entry is None:
            continue
        cls, constructor = entry
        init = getattr(cls, constructor) if constructor else cls.__init__
        if "save_backbone" in inspect.signature(init).parameters:
            return True
    return False


def mark_lightweight(config: Any) -> int:
    """Sets `save_backbone: false` on every component that takes it; returns how many."""
    count = 0
    if isinstance(config, dict):
        if isinstance(config.get("type"), str) and restores_from_model_name(config["type"]):
            config["save_backbone"] = False
            count += 1
        for value in config.values():
            count += mark_lightweight(value)
    elif isinstance(config, list):
        for value in config:
            count += mark_lightweight(value)
    return count


def slim_archive(archive: str, output: str) -> None:
    """
    Writes `output`, an archive of `archive` that holds only the trained parameters, the config
    and the vocabulary; loading it rebuilds the frozen backbone from `model_name`.
    """
    import allennlp_lpt  # noqa: F401
    from allennlp_lpt.archives import extract_archive, written_atomically

    with tempfile.TemporaryDirectory() as folder:
        # Missing, damaged or refused archives and weights: a ConfigurationError naming `archive`.
        extract_archive(archive, folder)
        config_path = os.path.join(folder, "config.json")
        if not os.path.isfile(config_path) or not os.path.isfile(os.path.join(folder, "weights.th")):
            raise ConfigurationError(
                f"{archive}: not a model archive (it has no config.json or weights.th). Give the "
                f"model.tar.gz that allennlp train wrote."
            )
        with open(config_path) as handle:
            config = json.load(handle)
        if mark_lightweight(config) == 0:
            raise ConfigurationError(
                f"{archive} has no component that restores frozen weights from model_name "
                f"(those that take save_backbone), so it cannot be made lighter."
            )
        weights = torch.load(os.path.join(folder, "weights.th"), map_location="cpu", weights_only=True)
        vocab = Vocabulary.from_files(os.path.join(folder, "vocabulary"))
        rebuilt = Model.from_params(vocab=vocab, params=Params(json.loads(json.dumps(config["model"]))))
        keep = set(rebuilt.state_dict())
        pretrained = {n: t for n, t in _full_state(rebuilt).items() if n not in keep}
        for name, tensor in weights.items():
            if name in pretrained and not torch.equal(pretrained[name].cpu(), tensor):
                raise ConfigurationError(
                    f"{archive}: the weight {name} differs from the one {name.split('.')[0]} loads "
                    f"from model_name, so a lightweight archive would predict differently."
                )
        torch.save({n: t for n, t in weights.items() if n in keep}, os.path.join(folder, "weights.th"))
        with open(config_path, "w") as handle:
            json.dump(config, handle, indent=2)
        # Complete or absent: a disk that fills leaves nothing under `output`.
        with written_atomically(output) as partial, tarfile.open(partial, "w:gz") as handle:
            for name in sorted(os.listdir(folder)):
                handle.add(os.path.join(folder, name), arcname=name)


def _run(args: argparse.Namespace) -> None:
    slim_archive(args.archive, args.output)
    mib = 2**20
    print(f"wrote {args.output}: {os.path.getsize(args.output) / mib:.1f} MiB (the full archive "
          f"{args.archive}: {os.path.getsize(args.archive) / mib:.1f} MiB); it loads the frozen "
          f"backbone from model_name")


def _full_state(model: torch.nn.Module):
    from allennlp_lpt.core.pretrained import PretrainedPart

    saved = {}
    for module in model.modules():
        if isinstance(module, PretrainedPart):
            saved[module] = module.save_weights
            module.save_weights = True
    try:
        return model.state_dict()
    finally:
        for module, value in saved.items():
            module.save_weights = value


@Subcommand.register("lpt-slim-archive")
class SlimArchive(Subcommand):
    """`allennlp lpt-slim-archive ARCHIVE OUTPUT`: a lightweight copy of a late-prompt archive."""

    # AllenNLP then gives the subcommand --include-package (repeatable) and imports the plugins.
    requires_plugins = True

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Writes a copy of ARCHIVE that holds only the trained parameters, the config and the "
            "vocabulary; the frozen backbone is rebuilt from model_name when it is loaded (as with "
            "`save_backbone: false` on the components at training time). Refuses when the "
            "archive's frozen weights differ from model_name's."
        )
        sub = parser.add_parser(self.name, description=description, help="Make a lightweight archive.")
        sub.add_argument("archive")
        sub.add_argument("output")
        sub.set_defaults(func=_run)
        return sub
