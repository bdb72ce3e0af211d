"""Gradient methods, one module each, and their registry (see `base`)."""

from .base import (FINITE_DIFF_STEP, GradientChoice, GradientContext, GradientError, GradientMethod, canonical_name,
                   choose, method_class, method_names, method_summaries, register)

__all__ = ["FINITE_DIFF_STEP", "GradientChoice", "GradientContext", "GradientError", "GradientMethod",
           "canonical_name", "choose", "method_class", "method_names", "method_summaries", "register"]
