"""
Walking AllenNLP configs as nested dicts: find a key anywhere, flatten to dotted keys, compare
two configs, and name dotted keys briefly. Shared by the sweep and the aggregation.
"""
import json
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence

from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

# The `K-SEED` folder that `allennlp lpt-few-shot` writes each split into: `.../sst-2/100-13/`.
DATA_SEED_FOLDER = re.compile(r"(?<=/)(\d+)-(\d+)(?=/)")


def load_config(config_path: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The config at `config_path` (jsonnet or JSON) with `-o`-style dotted overrides applied."""
    return Params.from_file(config_path, params_overrides=json.dumps(overrides)).as_dict(quiet=True)


def paths_of(config: Any, key: str, prefix: str = "") -> Iterator[str]:
    """The dotted path of every occurrence of `key` in `config`, outermost first."""
    if isinstance(config, dict):
        for name, value in config.items():
            path = f"{prefix}{name}"
            if name == key:
                yield path
            yield from paths_of(value, key, path + ".")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from paths_of(value, key, f"{prefix}{index}.")


def expand_key(config: Dict[str, Any], key: str, *, flag: str = "--grid") -> List[str]:
    """`*.name` means every `name` anywhere in the config; other keys are dotted paths."""
    if not key.startswith("*."):
        return [key]
    paths = list(paths_of(config, key[2:]))
    if not paths:
        raise ConfigurationError(f"{flag} key {key!r}: the config has no key {key[2:]!r}")
    return paths


def first(config: Any, key: str) -> Optional[Any]:
    """The value of `key` in `config` itself, else the first one found in its values, depth
    first (None where there is none)."""
    if isinstance(config, dict):
        if key in config:
            return config[key]
        values: Iterator[Any] = (first(value, key) for value in config.values())
    elif isinstance(config, list):
        values = (first(value, key) for value in config)
    else:
        return None
    return next((value for value in values if value is not None), None)


def flatten(config: Any, prefix: str = "") -> Dict[str, str]:
    """Dotted key -> JSON value of every leaf of a config."""
    if isinstance(config, dict) and config:
        items = config.items()
    elif isinstance(config, list) and config:
        items = enumerate(config)  # type: ignore[assignment]
    else:
        return {prefix: json.dumps(config, sort_keys=True)}
    flat: Dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def difference(saved: Any, wanted: Any, path: str = "") -> Optional[str]:
    """The first key where two configs differ (`None` when they are equal), for messages."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for key in sorted(set(saved) | set(wanted)):
            dotted = f"{path}.{key}" if path else key
            if key not in saved or key not in wanted:
                return f"{dotted} is {'only in the new config' if key not in saved else 'only in the saved one'}"
            found = difference(saved[key], wanted[key], dotted)
            if found:
                return found
        return None
    if isinstance(saved, list) and isinstance(wanted, list) and len(saved) == len(wanted):
        for index, (a, b) in enumerate(zip(saved, wanted)):
            found = difference(a, b, f"{path}.{index}")
            if found:
                return found
        return None
    return None if saved == wanted else f"{path}: saved {json.dumps(saved)}, now {json.dumps(wanted)}"


def short_names(keys: Sequence[str]) -> Dict[str, str]:
    """Each key's shortest dotted suffix that no other key ends with: `a.dropout` and
    `b.dropout` stay `a.dropout` and `b.dropout`, `*.prompt_layer` alone is `prompt_layer`."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for length in range(1, len(parts) + 1):
            suffix = ".".join(parts[-length:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names


def validation_metric(config: Dict[str, Any]) -> str:
    """The trainer's validation metric without its sign (`-loss` by default)."""
    metric = config.get("trainer", {}).get("validation_metric", "-loss")
    metric = metric[0] if isinstance(metric, list) else metric
    return metric.lstrip("+-")
