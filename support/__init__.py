"""Helpers that tests import: scripted servers and the like (not tests themselves)."""
