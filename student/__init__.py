"""The small model: loading, SFT, RL, quantization, inference and latency measurement."""
