"""cotdistill: distil chain-of-thought reasoning from a large teacher LM into a small student."""

__version__ = "0.1.0"
