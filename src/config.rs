//! `bert_config.json` (Google) and `config.json` (Hugging Face): the model hyper-parameters.
