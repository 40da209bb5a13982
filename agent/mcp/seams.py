"""Every touch of the `mcp` SDK's private names, in one place (tests/mcp/test_seams.py checks them).

The SDK marks a connection whose server hung up or exited (EOF on stdio, a closed HTTP stream) on
its dispatcher, and answers later requests with `CONNECTION_CLOSED`; the `Client` stays entered and
has no public way to ask. `ping`, the public probe, is gone from the 2026-07-28 protocol.
"""

from __future__ import annotations

from mcp import Client


def connection_closed(client: Client) -> bool:
    """Whether `client`'s connection has ended (a request sent now would fail at once)."""
    dispatcher = getattr(client.session, "_dispatcher", None)
    return bool(getattr(dispatcher, "_closed", False))
