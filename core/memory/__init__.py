"""Backline package."""
