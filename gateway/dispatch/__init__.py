"""Dispatch: getting an alarm to the people who act on it.

The central-station link (Contact ID over SIA DC-09) lives here; the cases, the
outbox that re-sends until someone acknowledges, and the API are built on it.
"""
