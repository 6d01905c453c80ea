"""Lector webui package."""
