"""What the dispatch console is shown of an open case's home: its held clips (with signed
playback URLs that work while the case is open) and its cameras (to watch live)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CaseClipOut(BaseModel):
    camera: str
    camera_name: str
    kind: str
    start: datetime
    end: datetime
    recording: str
    """Signed URL of the clip's MP4 (byte ranges: ``<video src>`` plays and seeks it)."""
    snapshot: str
    """Signed URL of a JPEG at the clip's start."""
    expires_in: int


class CaseCameraOut(BaseModel):
    id: str
    name: str
