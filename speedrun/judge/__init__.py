"""The judge: logs -> parsed runs -> checks -> verdict -> reports.

Nothing in this package imports, executes or evaluates code that comes from a submission:
embedded sources are read as text, or parsed with `ast`, and never run.
"""
