from allennlp_lpt.data.dataset_readers.tsv_classification import TaskReader, TsvClassificationReader

__all__ = ["TaskReader", "TsvClassificationReader"]
