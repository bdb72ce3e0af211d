"""`python -m workbench.bench ...`: the benchmark command line."""

from .cli import main

main()
