"""The voice platforms as the API sees them, for tests and benchmarks alike: wire-format payloads
built from recorded examples (``payloads/``), sent the way each platform sends them, and tenants
made through the real admin API.

``common`` loads and serializes payloads; ``vapi``, ``retell`` and ``bland`` build each
platform's; ``custom`` builds and signs messages of Backline's own contract.
"""
