"""The pull-request check: which record folders a change touches, their judgements, one Markdown report."""
