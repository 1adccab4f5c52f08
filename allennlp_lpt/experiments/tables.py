"""Mean ± standard deviation over runs, as markdown tables."""
import statistics
from typing import Iterable, List, Sequence, Tuple


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """The mean and the sample standard deviation (0 for a single value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_cell(values: Sequence[float], *, scale: float = 1.0, digits: int = 2) -> str:
    """`mean ± std` of `values` times `scale`, e.g. `86.12 ± 0.31`."""
    mean, std = mean_std(values)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table with one line per row, ending with a newline."""
    lines: List[str] = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
