"""hydraquant: raw exchange data to calibrated, leak-free, backtested ML trading signals."""

__version__ = "0.1.0"
