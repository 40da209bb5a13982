"""Benchmarks, each `python -m bench.NAME`: it prints a table of figures next to a baseline run in the
same run. `bare_chat` and `hello_world` are those baselines' apps; `report` prints the tables."""
