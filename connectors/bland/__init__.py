"""Bland connector: post-call webhooks, dynamic-data fetches and custom tools <-> canonical
events, credential checks, replies and tool export."""
