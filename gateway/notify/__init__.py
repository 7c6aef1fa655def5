"""Subscriber notifications: the e-mail and SMS transports behind the outbox.

Each transport makes one attempt and reports failure as a
``NotificationError`` that says whether trying again can help; retries,
persistence and de-duplication belong to the outbox that calls them.
"""
