"""What the tests and the benchmarks share; neither imports the other, and nothing here imports either.

Fake chat models (`fakes`), stand-ins for the outside world on 127.0.0.1 (`scripted_openai`,
`recording`, `langsmith_standin`), serving the app in-process or as a process (`servers`), a lean
Gradio client (`gradio_http`), running one turn to its end (`turns`), and the machine's calibration
figures every benchmark prints (`calibration`, with its bare Gradio app `hello_world`).
The app never imports it.
"""
