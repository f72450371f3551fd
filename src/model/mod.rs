//! The BERT encoder (`modeling.py`): embeddings, attention, feed-forward, pooler.
