"""Lector tools package."""
