"""Contract test for agent/mcp/seams.py: the `mcp` SDK's private "connection closed" flag still
exists and still flips when a server exits. If an SDK upgrade renamed it, `connection_closed`
would answer False for ever and a crashed server would never be restarted."""

import asyncio
import os
import signal
import sys
import textwrap

from mcp import Client, StdioServerParameters

from agent.mcp.seams import connection_closed

SERVER = textwrap.dedent(
    """
    import os

    from mcp.server.mcpserver import MCPServer

    server = MCPServer("seam")

    @server.tool()
    def pid() -> str:
        return str(os.getpid())

    server.run()
    """
)


async def test_the_private_flag_exists_and_flips_when_the_server_exits(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    async with Client(StdioServerParameters(command=sys.executable, args=[str(script)])) as client:
        assert hasattr(client.session._dispatcher, "_closed"), "the SDK renamed what seams.py reads"
        assert not connection_closed(client)
        result = await client.call_tool("pid", {})
        os.kill(int(result.content[0].text), signal.SIGKILL)  # the server dies after it answered
        for _ in range(200):
            if connection_closed(client):
                break
            await asyncio.sleep(0.05)
        assert connection_closed(client), "a server that exited is not seen as closed"
