"""Lector retrieval package."""
