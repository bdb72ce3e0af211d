"""Training: the loop, its metric stream, and the matched classical baseline."""

from .baseline import matched_classical_spec
from .metrics import MetricStream, Subscription
from .trainer import TrainConfig, Trainer, TrainingError, TrainResult, resume, train

__all__ = ["MetricStream", "Subscription", "TrainConfig", "TrainResult", "Trainer", "TrainingError",
           "matched_classical_spec", "resume", "train"]
