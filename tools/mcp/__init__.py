"""Use the tools of MCP servers: their configuration and the client."""
