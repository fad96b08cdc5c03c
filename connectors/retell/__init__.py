"""Retell connector: event, inbound and custom-function webhooks <-> canonical events,
``X-Retell-Signature`` checks, reply shapes and custom-function export."""
