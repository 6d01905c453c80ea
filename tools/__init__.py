"""Tools the planner calls: the Tool base and registry, the calculator, web fetch, the code interpreter, MCP."""
