"""Tests of the Gradio side's pieces (view, pacing, guard, history...), each without a server."""
