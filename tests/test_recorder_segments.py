"""The segment writer, salvage, scan, reconcile and the pre-roll, on a local H.264 file.

The packets come from a file instead of a camera (same PyAV packets, with
B-frames and AAC audio, which the RTSP tests do not have), with simulated
arrival times, so these tests are fast and exact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from recorder.archive import complete_fragments_end, delete_segment, reconcile, salvage, scan
from recorder.layout import SegmentInfo, check_camera, parse_final, part_path
from recorder.preroll import PrerollBuffer
from recorder.segments import SegmentWriter

T0 = datetime(2026, 3, 10, 23, 59, 55, tzinfo=UTC)  # segments cross midnight


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of 320x180 10 fps H.264 (a keyframe a second, B-frames) with AAC audio."""
    path = tmp_path_factory.mktemp("src") / "source.mp4"
    video = ["-f", "lavfi", "-i", "testsrc=size=320x180:rate=10"]
    audio = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
    h264 = ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "10"]
    subprocess.run(
        ["ffmpeg", "-v", "error", *video, *audio, "-t", "8", *h264, "-c:a", "aac", str(path)],
        check=True,
    )
    return path


def packets(path: Path) -> Iterator[tuple[av.container.InputContainer, av.Packet, datetime]]:  # type: ignore[type-arg]
    """The file's packets with arrival times: T0 plus their decoding time."""
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0], container.streams.audio[0]):
            if packet.dts is not None:
                yield (
                    container,
                    packet,
                    T0 + timedelta(seconds=float(packet.dts * packet.time_base)),
                )


def record(path: Path, archive: Path, segment_s: float) -> list[SegmentInfo]:
    infos: list[SegmentInfo] = []
    writer = SegmentWriter("hall", archive, infos.append, segment_s=segment_s)
    begun = False
    for container, packet, wall in packets(path):
        if not begun:
            writer.begin(container.streams.video[0], container.streams.audio[0])
            begun = True
        writer.write(packet, wall)
    writer.end()
    return infos


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    return result.stderr


def first_video_keyframe(path: Path) -> bool:
    first_packet = ["-select_streams", "v", "-read_intervals", "%+#1"]
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            *first_packet,
            "-show_entries",
            "packet=flags",
            "-of",
            "json",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(result.stdout)["packets"][0]["flags"]).startswith("K")


def test_segments_cut_on_keyframes_rebased_and_named_by_utc_day(
    source_file: Path, tmp_path: Path
) -> None:
    infos = record(source_file, tmp_path, segment_s=3)
    assert [round(i.duration, 1) for i in infos] == [3.0, 3.0, 2.0]
    assert [i.path.parent.name for i in infos] == ["2026-03-10", "2026-03-10", "2026-03-11"]
    first = infos[0].start
    assert infos[0].path.name == f"{first:%H%M%S}.{first.microsecond // 1000:03d}_3000ms.mp4"
    assert infos[1].start == infos[0].end
    for info in infos:
        assert decode_errors(info.path) == ""
        assert first_video_keyframe(info.path)
        with av.open(str(info.path)) as c:
            head = next(p for p in c.demux(c.streams.video[0]) if p.dts is not None)
            assert head.dts == 0 and head.pts is not None and head.pts >= 0
            assert {s.type for s in c.streams} == {"video", "audio"}
        assert info.bytes == info.path.stat().st_size
        assert parse_final("hall", info.path, info.bytes) == info
    assert scan(tmp_path, "hall") == infos


def test_salvage_cuts_a_torn_file_back_to_its_last_complete_fragment(
    source_file: Path, tmp_path: Path
) -> None:
    (whole,) = record(source_file, tmp_path / "src", segment_s=60)
    part = part_path(tmp_path, "hall", T0)
    part.parent.mkdir(parents=True)
    shutil.copy(whole.path, part)
    good_end = complete_fragments_end(part)
    assert 0 < good_end <= part.stat().st_size
    with part.open("r+b") as fh:  # tear the file inside a fragment, as kill -9 may
        fh.truncate(good_end - 5000)
    info = salvage("hall", part)
    assert info is not None and not part.exists()
    assert 5.0 <= info.duration < 8.0
    assert info.keyframe_at_start and not info.motion
    assert decode_errors(info.path) == ""
    assert info.path.stat().st_size < good_end - 5000
    assert scan(tmp_path, "hall") == [info]


def test_a_leftover_without_a_complete_fragment_is_deleted(
    source_file: Path, tmp_path: Path
) -> None:
    (whole,) = record(source_file, tmp_path / "src", segment_s=60)
    part = part_path(tmp_path, "hall", T0)
    part.parent.mkdir(parents=True)
    data = whole.path.read_bytes()
    moof = data.index(b"moof") - 4
    part.write_bytes(data[: moof + 100])
    assert complete_fragments_end(part) == 0
    assert salvage("hall", part) is None and not part.exists()
    assert scan(tmp_path, "hall") == []


def test_scan_ignores_foreign_files_and_reconcile_diffs_disk_and_index(
    source_file: Path, tmp_path: Path
) -> None:
    infos = record(source_file, tmp_path, segment_s=3)
    (infos[0].path.parent / "notes.txt").write_text("not a segment")
    on_disk = scan(tmp_path, "hall")
    assert on_disk == infos
    gone = tmp_path / "hall" / "2026-03-09" / "120000.000_10000ms.mp4"
    to_index, missing = reconcile(on_disk, {infos[0].path, gone})
    assert to_index == infos[1:] and missing == {gone}
    (infos[0].path.parent / "notes.txt").unlink()
    for info in infos[:2]:
        delete_segment(info.path)
    delete_segment(infos[0].path)  # already gone: no error
    assert scan(tmp_path, "hall") == infos[2:]
    assert not (tmp_path / "hall" / "2026-03-10").exists()  # its day directory went with it


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "x" * 65])
def test_camera_names_that_could_leave_the_archive_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a safe directory name"):
        check_camera(name)


def test_the_preroll_keeps_whole_gops_and_writes_a_faststart_clip(
    source_file: Path, tmp_path: Path
) -> None:
    buffer = PrerollBuffer("hall", seconds=2.5)
    writer = SegmentWriter("hall", tmp_path / "archive", lambda _info: None, segment_s=3)
    last = T0
    for container, packet, wall in packets(source_file):
        if last == T0:
            buffer.begin(container.streams.video[0], container.streams.audio[0])
            writer.begin(container.streams.video[0], container.streams.audio[0])
        buffer.add(packet, wall)
        writer.write(packet, wall)  # rebases the packet: the buffer must not care
        last = wall
    writer.end()
    preroll = buffer.snapshot()
    assert preroll.start is not None and preroll.packets[0].keyframe
    assert timedelta(seconds=2.5) <= last - preroll.start < timedelta(seconds=3.5)
    clip = tmp_path / "clip.mp4"
    seconds = preroll.write_mp4(clip)
    assert 2.5 <= seconds < 3.6
    data = clip.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "moov first: plays while downloading"
    assert decode_errors(clip) == "" and first_video_keyframe(clip)


def test_a_camera_clock_jump_closes_the_segment_and_the_next_keyframe_starts_one(
    source_file: Path, tmp_path: Path
) -> None:
    infos: list[SegmentInfo] = []
    writer = SegmentWriter("hall", tmp_path, infos.append, segment_s=60)
    begun = False
    for container, packet, wall in packets(source_file):
        if not begun:
            writer.begin(container.streams.video[0], container.streams.audio[0])
            begun = True
        if wall - T0 > timedelta(seconds=4.05):  # the camera restarts its clock
            shift = round(100 / packet.time_base)
            packet.dts = (packet.dts or 0) - shift
            packet.pts = None if packet.pts is None else packet.pts - shift
        writer.write(packet, wall)
    writer.end()
    assert len(infos) == 2
    assert 3.5 < infos[0].duration < 4.5 and 2.5 < infos[1].duration < 4.0
    for info in infos:
        assert decode_errors(info.path) == "" and first_video_keyframe(info.path)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a few seconds of the test stream fill it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"this machine forbids mounting a tmpfs: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_keeps_what_was_written_and_recording_resumes_when_space_returns(
    source_file: Path, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    infos: list[SegmentInfo] = []
    writer = SegmentWriter("hall", tiny_disk, infos.append, segment_s=2)
    evicted: list[SegmentInfo] = []
    freed_at = T0 + timedelta(seconds=5.2)
    begun = False
    for container, packet, wall in packets(source_file):
        if not begun:
            writer.begin(container.streams.video[0], container.streams.audio[0])
            begun = True
        if not evicted and wall > freed_at:
            evicted = list(infos)
            for info in evicted:  # the retention sweep evicts: space comes back
                delete_segment(info.path)
        writer.write(packet, wall)
    writer.end()
    assert len(evicted) >= 2, "segments were complete before the disk filled"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left" in errors[0].getMessage()
    assert any(r.getMessage() == "hall: recording again" for r in caplog.records)
    resumed = infos[len(evicted) :]  # opened once the failed file was cleared away
    assert resumed and round(resumed[0].duration) == 2
    assert resumed[0].start > evicted[-1].end
    for info in resumed:
        assert decode_errors(info.path) == ""
    assert not list(tiny_disk.rglob("*.part"))
    open_files = [os.readlink(f) for f in Path("/proc/self/fd").iterdir() if f.is_symlink()]
    assert not [f for f in open_files if f.startswith(str(tiny_disk))], "no file left open"


def test_a_disk_that_stays_full_is_logged_once_without_churning_files(
    source_file: Path, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing frees space: one error for the whole outage, no "recording
    again" (nothing was recorded), and no new file tried and deleted at every
    keyframe while there is not room for a segment."""
    infos: list[SegmentInfo] = []
    writer = SegmentWriter("hall", tiny_disk, infos.append, segment_s=2)
    begun = False
    for container, packet, wall in packets(source_file):
        if not begun:
            writer.begin(container.streams.video[0], container.streams.audio[0])
            begun = True
        writer.write(packet, wall)
    writer.end()
    assert len(infos) >= 2, "the disk filled mid-stream"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left" in errors[0]
    assert not [r for r in caplog.records if "recording again" in r.getMessage()]
    deleted = [r for r in caplog.records if "no complete fragment" in r.getMessage()]
    assert len(deleted) <= 1
