"""Subscriber notifications: the e-mail, SMS and Web Push transports behind the
outbox, the subscriptions push goes to, and the Russian texts all of them say.

Each transport makes one attempt and reports failure as a
``NotificationError`` that says whether trying again can help; retries,
persistence and de-duplication belong to the outbox that calls them.
"""
