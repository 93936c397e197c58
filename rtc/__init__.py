"""WebRTC ingest (WHIP) and relay to viewers (WHEP), forwarding without transcoding."""
