"""MCP connectors: the pooled client the tool gateway calls out through, and the protocol side
of Backline's own MCP endpoint."""
