"""Persistence: SQLAlchemy 2 models, engine set-up and Alembic migrations.

Both model modules are imported here so that ``Base.metadata`` always holds
every table, whichever module a caller (or Alembic) imports first.
"""

from gateway.db import (
    command_models,
    intercom_models,
    media_models,
    models,
    people_models,
    push_models,
    security_models,
)

__all__ = [
    "command_models",
    "intercom_models",
    "media_models",
    "models",
    "people_models",
    "push_models",
    "security_models",
]
