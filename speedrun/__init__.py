"""speedrun: run and referee the NanoGPT speedrun."""

__version__ = "0.1.0"
