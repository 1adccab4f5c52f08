"""
Mean ± standard deviation over runs, as markdown tables, on one scale for every table
(`lpt-sweep`, `lpt-aggregate`, `lpt-compare`): metrics that are fractions (accuracy, F1, ...) in
percent with 2 decimals, ± the sample standard deviation only where there are 2 runs or more.
"""
import re
import statistics
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

# Metrics that AllenNLP's and this package's models report as fractions of 1.
FRACTION_METRIC = re.compile(
    r"^(accuracy|acc_and_f1|macro_f1|f1|precision|recall|(f1|precision|recall)_label=.*)$"
)
PERCENT_NOTE = (
    "Metrics in percent (x 100), 2 decimals: mean ± sample standard deviation over the runs "
    "(no ± for a single run)."
)


def metric_scale(metric: str) -> float:
    """100 for a metric that is a fraction (shown in percent), 1 for any other (a loss)."""
    return 100.0 if FRACTION_METRIC.match(metric) else 1.0


def label_count(metrics: Dict[str, Any]) -> int:
    """How many labels a run's `metrics.json` reports a per-label F1 for (0 where none)."""
    return len({key.split("f1_label=", 1)[1] for key in metrics if "f1_label=" in key})


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """The mean and the sample standard deviation (0 for a single value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_cell(values: Sequence[float], *, scale: float = 100.0, digits: int = 2) -> str:
    """`mean ± std` of `values` times `scale`, e.g. `86.12 ± 0.31`; a single value alone
    (`86.12`: a spread of one run is not a measurement); empty for no value."""
    if not values:
        return ""
    mean, std = mean_std(values)
    return f"{scale * mean:.{digits}f}" + (f" ± {scale * std:.{digits}f}" if len(values) > 1 else "")


def metric_cell(values: Sequence[Optional[float]], metric: str) -> str:
    """`mean_std_cell` of the values present, on `metric`'s scale (percent for fractions, 4
    decimals for anything else)."""
    present = [float(value) for value in values if value is not None]
    scale = metric_scale(metric)
    return mean_std_cell(present, scale=scale, digits=2 if scale == 100.0 else 4)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table with one line per row, ending with a newline."""
    lines: List[str] = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
