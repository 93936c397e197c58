"""The live room: a pure protocol, the event bus and the per-process fan-out hub."""
