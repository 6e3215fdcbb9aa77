"""Pipeline stages: each wires lake reads, a pure core function and lake writes."""
