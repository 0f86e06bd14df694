"""Importers of accident data from outside sources."""
