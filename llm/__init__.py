"""Lector llm package."""
