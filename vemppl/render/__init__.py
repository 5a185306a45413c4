"""Plate diagrams."""
