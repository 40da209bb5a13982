"""Running the app as several processes on one machine, behind nginx (`python -m deploy.workers`).

`processes.py` starts a command as its own process group and stops the whole group; the tests and
benchmarks start their apps with it too.
"""
