"""Reach against conversion: what each session did (recording, roll-ups, reports)."""
