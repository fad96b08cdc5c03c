"""Knowledge: per-agent knowledge bases, fresh sources, voice-ready hybrid retrieval."""
