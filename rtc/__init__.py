"""WebRTC ingest (WHIP) and relay to viewers (WHEP), forwarding without transcoding.

How a frame travels:

1. The host publishes over WHIP (:mod:`rtc.routes` → :class:`rtc.service.RelayService`). Its
   receivers' encoded frames are tapped before any decoder (:mod:`rtc.hooks`) and go to the
   session's :class:`rtc.broadcast.Broadcast`, which keeps timestamps continuous across host
   reconnects and notes keyframes and picture size (:mod:`rtc.frames`).
2. The broadcast packetises each frame once (:class:`rtc.sending.Packetizer`) and hands it to
   every viewer's :class:`rtc.tracks.ViewerTrack`; an idle viewer sends it at once
   (:class:`rtc.sending.ViewerSender`), a busy one queues it (bounded; on overflow it skips to
   the next keyframe). A viewer starts on a keyframe requested when it connects.
3. Relay worker processes (:mod:`rtc.worker`) serve viewers too: the origin streams them the
   encoded frames over a framed TCP protocol (:mod:`rtc.wire`, :mod:`rtc.workers`) and places
   each new viewer on the least loaded process.

aiortc internals used are listed and checked at start-up in :mod:`rtc.hooks` (aiortc is pinned).
"""
