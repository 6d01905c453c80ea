"""Fetch web pages safely: URL policy, address guard, pinned transport, extraction and the tool."""
