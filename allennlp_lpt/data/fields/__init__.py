from allennlp_lpt.data.fields.cache_keyed_text_field import CacheKeyedTextField

__all__ = ["CacheKeyedTextField"]
