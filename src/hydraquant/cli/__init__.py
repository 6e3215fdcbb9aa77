"""Command-line interface: a thin typer layer that wires configured stages together."""
