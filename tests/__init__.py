"""The tests. `agent/` tests the engine, `ui/` the Gradio side's pieces; the modules here test the app
whole: over HTTP, in Chromium, as processes, deployed, and the code's own rules (`test_code_quality.py`).

`conftest.py` holds fixtures only. Helpers the tests share with the benchmarks (fake models, stand-in
servers, launchers) live in the top-level `support/` package; no test imports another test module.
"""
