"""VAPI connector: server-URL messages <-> canonical events, credential checks, replies."""
