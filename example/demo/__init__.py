"""Run the example project as a multi-worker stack on this machine, without Docker.

`python -m demo serve` starts the stack to browse; `python -m demo run` runs
the multi-worker demo scenarios and prints the table of limits. Run both with
`example/` on the Python path.
"""
