"""Architecture search: search spaces as data, strategies behind one interface, objectives with a Pareto
front, successive halving, parallel evaluation, and every candidate recorded as a run in the store.

    import workbench
    results = workbench.search("circles-vqc", "circles", strategy="evolutionary", budget=8, epochs=5)
    results.to_pandas(); results.best; results.pareto("val_accuracy", "parameters")

The package itself is callable: `workbench.search(...)` is `workbench.search.search(...)`.
"""

import sys
import types

from .objectives import MEASURES, pareto_front
from .records import SearchRecords
from .results import SearchResults
from .runner import SearchError, halving_rungs, search
from .space import Candidate, Choice, SearchSpace, SpaceError, load_space
from .strategies import STRATEGIES, Strategy, make_strategy
from .templates import SPACE_DATASETS, get_space, space_names

__all__ = ["Candidate", "Choice", "MEASURES", "SPACE_DATASETS", "STRATEGIES", "SearchError", "SearchRecords",
           "SearchResults", "SearchSpace", "SpaceError", "Strategy", "get_space", "halving_rungs", "load_space",
           "make_strategy", "pareto_front", "search", "space_names"]


class _CallableModule(types.ModuleType):
    """Lets `workbench.search(...)` call the search function while `workbench.search.X` stays the package."""

    def __call__(self, *args, **kwargs) -> SearchResults:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
