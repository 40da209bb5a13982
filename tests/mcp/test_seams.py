"""Contract test for agent/mcp/seams.py: the `mcp` SDK's private "connection closed" flag still
exists and still flips when a server exits. If an SDK upgrade renamed it, `connection_closed`
would answer False for ever and a crashed server would never be restarted."""

import asyncio
import sys
import textwrap

from mcp import Client, StdioServerParameters

from agent.mcp.seams import connection_closed

SERVER = textwrap.dedent(
    """
    import os
    import threading

    from mcp.server.mcpserver import MCPServer

    server = MCPServer("seam")

    @server.tool()
    def leave() -> str:
        threading.Timer(0.1, os._exit, args=(0,)).start()
        return "bye"

    server.run()
    """
)


async def test_the_private_flag_exists_and_flips_when_the_server_exits(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    async with Client(StdioServerParameters(command=sys.executable, args=[str(script)])) as client:
        assert hasattr(client.session._dispatcher, "_closed"), "the SDK renamed what seams.py reads"
        assert not connection_closed(client)
        await client.call_tool("leave", {})
        for _ in range(100):
            if connection_closed(client):
                break
            await asyncio.sleep(0.05)
        assert connection_closed(client), "a server that exited is not seen as closed"
