"""One module per group of file families; :mod:`hydraquant.data.importers` holds the registry."""
