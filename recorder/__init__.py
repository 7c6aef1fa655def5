"""Media: camera sources, segment writing, archive index and retention, live relay."""
