"""Backline's own versioned webhook contract, for teams running their own voice stack."""
