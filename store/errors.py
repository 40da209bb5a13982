"""What the store raises."""


class StoreError(Exception):
    """The base of what the store raises."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or refused the operation."""


class StoreFull(StoreError):
    """This conversation alone is larger than what one owner may keep."""


class ConversationNotFound(StoreError):
    """No conversation with this id belongs to this owner (it never did, or it was deleted)."""
