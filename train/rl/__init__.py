"""Masked GRPO on verl 0.9.1 (the `rl` extra): plug-ins registered with verl's own registries, the data and
config they need, and the `minio3 train-rl` launcher. `train.rl.plugins` imports every plug-in module."""
