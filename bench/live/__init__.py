"""Live-view CPU: the gateway with 1, 10 and 50 WebRTC viewers on one 1080p camera.

In one run: a pre-encoded 1080p25 H.264 test pattern (main profile, 4 Mbit/s, a keyframe a
second) is looped by ``ffmpeg -re -c copy`` as RTP into a local GStreamer RTSP server, so the
camera costs almost nothing. The gateway runs as its own process (``moydom run --role api``,
everything on loopback); its CPU seconds (utime + stime, all threads, from /proc) are measured
over a window of wall time: idle, then with 1, 10 and 50 viewers. Viewers are aiortc clients
(``bench.live.client``) in processes of ten that do not decode (a frame counts once complete),
so the machine's cores are left to the gateway. Then, on the same camera, the recorder's copy
path (``python -m recorder.run``, 10 s segments) and ``ffmpeg -c copy`` (Frigate's) for scale.

Reported: the gateway's share of a core per step, per added viewer (target ≤ 2 %), the live
path for one viewer over idle against the recorder's copy path, time to first frame (cold: the
first viewer, which opens the RTSP upstream; warm: p50/p95 of the others, who wait for the next
keyframe), the upstream count at each step (one) and after the last viewer left (zero).

    .venv/bin/python -m bench.live [--seconds 20] [--settle 3] [--steps 1,10,50]
        [--size 1920x1080]  # a smaller camera: tests/test_bench_smoke.py's

The package: ``__main__`` (the steps and the table), ``rig`` (the gateway process, viewer
processes, the recorder), ``client`` (the WHEP viewer, also used by the tests); the camera is
``bench.camera``.
"""
