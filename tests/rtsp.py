"""RTSP cameras for the recorder's tests and benchmark: GStreamer mounts from launch lines.

``devices/testcamera.py`` serves one ball pattern; the recorder needs other
scenes (a still picture with sensor noise, a moving ball over it, audio, a
stream fed from outside), so this server takes any number of mounts, each a
``gst-launch`` description ending in ``rtph264pay name=pay0``:

    /usr/bin/python3 tests/rtsp.py --port 8554 --mount '/cam=( videotestsrc ... )'

A mount may also take an ONVIF back-channel (``--backchannel PATH=LAUNCH``), as intercom panels
offer one: a client that DESCRIBEs with ``Require: www.onvif.org/ver20/backchannel`` gets an
extra ``sendonly`` audio stream, and what it sends there goes into ``LAUNCH``, which starts with an
element named ``depay_backchannel`` (see :func:`backchannel_to_file`). Such a mount is not shared:
every client gets its own pipeline, as ``RTSPOnvifMediaFactory`` needs.

It runs under Debian's ``/usr/bin/python3`` (only it has ``gi``); the test
side starts it with :class:`RtspServer`. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

SYSTEM_PYTHON = "/usr/bin/python3"
VIDEO_CAPS = "video/x-raw,width={w},height={h},framerate={fps}/1"


def encode(width: int, height: int, fps: int, kbps: int = 600) -> str:
    """Raw video in, RTP H.264 (constrained baseline, a keyframe per second) out."""
    return (
        f"videoconvert ! {VIDEO_CAPS.format(w=width, h=height, fps=fps)},format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={kbps} "
        "! video/x-h264,profile=constrained-baseline ! h264parse "
        "! rtph264pay name=pay0 pt=96 config-interval=1"
    )


def scene(width: int, height: int, fps: int, *, noise: float = 0.15, ball: bool = False) -> str:
    """Still colour bars with per-pixel noise (a camera sensor at night), optionally with a
    ball sweeping across it: the motion tests' two scenes."""
    caps = VIDEO_CAPS.format(w=width, h=height, fps=fps)
    layers = [
        f"videotestsrc is-live=true pattern=smpte75 ! {caps} ! mix.",
        f"videotestsrc is-live=true pattern=snow ! {caps} ! mix.",
    ]
    if ball:
        layers.append(
            "videotestsrc is-live=true pattern=ball motion=sweep background-color=0x00000000 "
            f"foreground-color=0xffffffff ! {caps},format=BGRA ! mix."
        )
    return (
        f"( compositor name=mix sink_1::alpha={noise} ! {encode(width, height, fps)} "
        + " ".join(layers)
        + " )"
    )


def with_audio(video: str) -> str:
    """A mount's launch line with an AAC sine tone added as a second stream (pay1)."""
    audio = (
        "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=16000,channels=1 "
        "! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
    )
    return f"{video.rstrip(' )')} {audio} )"


def udp_h264(port: int) -> str:
    """A mount re-serving H.264 that an outside encoder sends as RTP to ``port``.

    The outside encoder (``ffmpeg ... -f rtp rtp://127.0.0.1:PORT``) must put
    SPS/PPS in the stream itself (x264 does without a global header).
    """
    caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
    return (
        f'( udpsrc address=127.0.0.1 port={port} buffer-size=4194304 caps="{caps}" '
        "! rtpjitterbuffer latency=50 ! rtph264depay ! h264parse "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def backchannel_to_file(path: Path) -> str:
    """A back-channel that takes G.711 µ-law (RTP payload 0, 8 kHz) and appends its samples, still
    µ-law, to ``path``: a raw file is readable while it grows (a WAV's header is written at EOS)."""
    caps = "application/x-rtp,media=audio,payload=0,clock-rate=8000,encoding-name=PCMU"
    return (
        f'( capsfilter caps="{caps}" name=depay_backchannel ! rtppcmudepay '
        f"! filesink location={path} sync=false async=false buffer-mode=unbuffered )"
    )


class RtspServer:
    """The server as a child process; ``stop``/``start`` again on the same port."""

    def __init__(
        self,
        port: int,
        mounts: dict[str, str],
        backchannels: dict[str, str] | None = None,
        digest: tuple[str, str] | None = None,
    ) -> None:
        self.port = port
        self.mounts = mounts
        self.backchannels = backchannels or {}
        self.digest = digest
        """A user and password every client must give (Digest authentication), if set."""
        self.process: subprocess.Popen[str] | None = None

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 10.0) -> None:
        args = [SYSTEM_PYTHON, str(Path(__file__)), "--port", str(self.port)]
        for path, launch in self.mounts.items():
            args += ["--mount", f"{path}={launch}"]
        for path, launch in self.backchannels.items():
            args += ["--backchannel", f"{path}={launch}"]
        if self.digest is not None:
            args += ["--digest", ":".join(self.digest)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.strip() == "ready":
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"RTSP server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill the server: to a camera's readers this is the camera vanishing."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", default=[], metavar="PATH=LAUNCH")
    parser.add_argument("--backchannel", action="append", default=[], metavar="PATH=LAUNCH")
    parser.add_argument("--digest", metavar="USER:PASSWORD")
    args = parser.parse_args(argv)
    backchannels = dict(mount.split("=", 1) for mount in args.backchannel)

    import gi  # noqa: PLC0415 - only Debian's python3 has it; see the module docstring

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # noqa: PLC0415

    Gst.init(None)
    # Only the ONVIF server's clients accept the back-channel's Require header.
    server = GstRtspServer.RTSPOnvifServer() if backchannels else GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.digest:
        gi.require_version("GstRtsp", "1.0")
        from gi.repository import GstRtsp  # noqa: PLC0415

        user, password = args.digest.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
    role = "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    for mount in args.mount:
        path, launch = mount.split("=", 1)
        if path in backchannels:
            factory = GstRtspServer.RTSPOnvifMediaFactory()
            factory.set_launch(launch)
            factory.set_backchannel_launch(backchannels[path])
            factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia)
            factory.set_shared(False)
        else:
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(launch)
            factory.set_shared(True)
        if args.digest:
            factory.add_role_from_structure(Gst.Structure.from_string(role)[0])
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
