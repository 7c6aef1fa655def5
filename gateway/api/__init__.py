"""The REST and WebSocket API (FastAPI): routers per resource under ``routes/``."""
