"""Presentation: rich tables for the terminal (HTML reports will live here too)."""
