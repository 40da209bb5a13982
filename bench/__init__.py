"""Benchmarks, each `python -m bench.NAME`: it prints a table of figures next to a baseline run in the
same run, and the machine's calibration figures (`support.calibration`). `bare_chat` is the baseline
chat app; `report` prints the tables."""
