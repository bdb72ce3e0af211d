"""Architecture search: search spaces as data, strategies behind one interface, objectives with a Pareto
front, successive halving, parallel evaluation, and every candidate recorded as a run in the store."""

from .space import Candidate, Choice, SearchSpace, SpaceError, load_space
from .templates import SPACE_DATASETS, get_space, space_names

__all__ = ["Candidate", "Choice", "SPACE_DATASETS", "SearchSpace", "SpaceError", "get_space", "load_space",
           "space_names"]
