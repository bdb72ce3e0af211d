"""Training: the loop, its metric stream, and the matched classical baseline."""

from .baseline import matched_classical_spec
from .metrics import MetricStream, Subscription
from .trainer import UNTIL_PAUSED, TrainConfig, Trainer, TrainingError, TrainResult, resume, train

__all__ = ["UNTIL_PAUSED", "MetricStream", "Subscription", "TrainConfig", "TrainResult", "Trainer", "TrainingError",
           "matched_classical_spec", "resume", "train"]
