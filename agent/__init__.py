"""Lector agent package."""
