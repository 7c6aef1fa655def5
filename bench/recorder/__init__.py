"""Recorder CPU: moydom's recording and motion paths against ffmpeg, on one 1080p25 camera.

In one run, on the same live stream (a pre-encoded 1080p25 H.264 test pattern,
looped by ``ffmpeg -re -c copy`` as RTP into a local GStreamer RTSP server, so
the camera costs almost nothing), each case is a fresh process reading the
stream over RTSP/TCP; its own CPU seconds (utime + stime, all threads, from
/proc) are measured over a window of wall time once it is streaming, and
reported per minute of video. The cases run round-robin, ``--runs`` times;
the table shows medians.

- ``ffmpeg copy``: ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment
  -segment_time 10 -reset_timestamps 1 out%03d.mp4`` (what Frigate runs);
- ``moydom record``: ``python -m recorder.run`` (segments, no motion);
- ``ffmpeg read``: ``-c copy -f null`` — receiving the stream, nothing else;
- ``ffmpeg decode keyframes`` / ``every frame``: ``-skip_frame nokey`` or not,
  one decoding thread, ``-f null`` — decoding the detect stream alone;
- ``moydom motion keyframes`` / ``every frame``: the recorder with motion
  detection on the main stream (its default: keyframes only; or every frame
  decoded, 5 analysed per second).

Targets: moydom record ≤ 1.5 × ffmpeg copy; the motion path's extra CPU
(motion − record) ≤ 1.3 × decoding's extra CPU (decode − read).

    .venv/bin/python -m bench.recorder [--runs 3] [--seconds 20] [--warm-up 6]
        [--size 1920x1080]  # a smaller camera: tests/test_bench_smoke.py's
        [--keep]

The package: ``__main__`` (the command line and the table), ``cases`` (the
commands, one timed run); the camera is ``bench.camera``.
"""
