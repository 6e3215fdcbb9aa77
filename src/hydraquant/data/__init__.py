"""Data layer: sources (archive, importers, simulator) -> validated frames -> Parquet lake."""
