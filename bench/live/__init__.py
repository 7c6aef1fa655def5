"""Live-view benchmark: the gateway's CPU with 1, 10 and 50 WebRTC viewers on one 1080p camera."""
