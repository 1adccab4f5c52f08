"""AllenNLP subcommands (`allennlp lpt-*`), registered when the plugin is imported."""
from allennlp_lpt.commands.aggregate import Aggregate
from allennlp_lpt.commands.benchmark import Benchmark
from allennlp_lpt.commands.compare import Compare
from allennlp_lpt.commands.few_shot import FewShot
from allennlp_lpt.commands.methods import Methods
from allennlp_lpt.commands.predict_multi import PredictMulti
from allennlp_lpt.commands.slim_archive import SlimArchive
from allennlp_lpt.commands.sweep import Sweep

__all__ = ["Aggregate", "Benchmark", "Compare", "FewShot", "Methods", "PredictMulti", "SlimArchive", "Sweep"]
