"""Engine tests: scripted models through the executor, and real HTTP against servers on 127.0.0.1.

`dialects.py` is test data, not a test: the replays of what other OpenAI-compatible servers stream.
"""
