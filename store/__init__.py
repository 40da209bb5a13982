"""Saved conversations: one interface (`ConversationStore`), SQLite or PostgreSQL behind it.

The app and `ui/` use it; the engine (`agent/`) never does.
"""

from store.conversations import (
    Conversation,
    ConversationStore,
    Limits,
    Page,
    Saved,
    Summary,
    database_url,
    new_owner_id,
)
from store.errors import ConversationNotFound, StoreError, StoreFull, StoreUnavailable

__all__ = [
    "Conversation",
    "ConversationNotFound",
    "ConversationStore",
    "Limits",
    "Page",
    "Saved",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "Summary",
    "database_url",
    "new_owner_id",
]
