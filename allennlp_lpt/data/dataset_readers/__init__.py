from allennlp_lpt.data.dataset_readers.tsv_classification import TsvClassificationReader

__all__ = ["TsvClassificationReader"]
