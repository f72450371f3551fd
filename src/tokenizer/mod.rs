//! Google's `FullTokenizer` (`tokenization.py`): basic tokenizer, WordPiece, encodings.
