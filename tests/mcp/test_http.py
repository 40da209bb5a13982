"""A Streamable HTTP MCP server: `mcp-server-time` served over HTTP by `mcp-proxy` (both from PyPI)."""

import pytest

from agent.mcp import start_configured
from support.mcp_servers import over_http, reference_server, write_config

pytestmark = pytest.mark.slow


async def test_a_streamable_http_server_with_headers_is_listed_and_called(tmp_path):
    with over_http(reference_server("time", "--local-timezone", "UTC")) as url:
        config = write_config(
            tmp_path,
            {"remote": {"url": url, "headers": {"Authorization": "Bearer ${TOKEN}"}, "timeout_s": 10}},
        )
        said: list[str] = []
        servers, toolbox = start_configured(config, {"TOKEN": "t0ken"}, said.append)
        try:
            assert said == []
            assert toolbox.by_source()["remote"] == ["get_current_time", "convert_time"]
            output = await toolbox.get("convert_time").ainvoke(
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
            assert '"datetime": "' in output and "+09:00" in output
        finally:
            await servers.aclose()
