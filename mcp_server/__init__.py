"""funcsmith: an MCP tool server that serves, and grows, a folder of Python functions."""

__version__ = "0.1.0"
