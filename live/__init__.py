"""Vitrine: the app, sessions, rooms, real-time fan-out and analytics."""

__version__ = "0.1.0"
