//! Checkpoint loaders: Google TF checkpoints, Hugging Face safetensors, ONNX (feature), `.bert`.
