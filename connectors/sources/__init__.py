"""Knowledge-source connectors: reading file formats and fetching URLs."""
