"""Tools: built-in tools now; the MCP gateway later."""
