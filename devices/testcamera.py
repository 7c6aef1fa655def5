"""A test camera: an RTSP server streaming a live H.264 test pattern.

Run with Debian's ``/usr/bin/python3`` (GStreamer's RTSP server is only
importable there, through ``gi``), as a child process:

    /usr/bin/python3 -m devices.testcamera --port 8554 --path /demo

The mount is shared, so every reader gets the same live stream, as from a
real camera. It imports nothing else from moydom on purpose.
"""

from __future__ import annotations

import argparse
import signal
import sys

PIPELINE = (
    "( videotestsrc is-live=true pattern={pattern} "
    "! video/x-raw,width={width},height={height},framerate={fps}/1 "
    "! clockoverlay "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} "
    "! video/x-h264,profile=constrained-baseline "
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/demo")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--kbps", type=int, default=800)
    parser.add_argument("--pattern", default="ball")
    args = parser.parse_args(argv)

    import gi  # noqa: PLC0415 - only Debian's python3 has it; see the module docstring

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # noqa: PLC0415

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        PIPELINE.format(
            pattern=args.pattern,
            width=args.width,
            height=args.height,
            fps=args.fps,
            gop=args.fps,
            kbps=args.kbps,
        )
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp://{args.host}:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
