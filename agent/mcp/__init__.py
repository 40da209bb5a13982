"""Tools from MCP servers, configured in a file (`agent.mcp.config`), connected once per process.

- `config`: the config file (Claude Desktop's format) → `ServerConfig`s;
- `connection`: one server's kept connection, reopened after it drops;
- `results`: a tool result → the text the model reads;
- `tools`: a server's tool → a LangChain tool, with its approval policy resolved;
- `servers`: every server of the process on its own event loop, and the `Toolbox` with their tools.
"""

from agent.mcp.config import McpConfigError, ServerConfig, read_config
from agent.mcp.servers import McpServers, start_configured

__all__ = ["McpConfigError", "McpServers", "ServerConfig", "read_config", "start_configured"]
