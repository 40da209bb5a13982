"""The MCP config file: Claude Desktop's format, `${VAR}`s, allow-lists, time-outs and approval policies."""

import json

import mcp.types as types
import pytest

from agent.mcp.config import McpConfigError, ServerConfig, ServerProblem, read_config
from agent.mcp.tools import approval_for

ENV = {"TOKEN": "s3cret", "HOME": "/home/me"}


def config_file(tmp_path, servers, key="mcpServers"):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({key: servers}))
    return path


def test_stdio_and_http_servers_are_read_with_variables_replaced(tmp_path):
    path = config_file(
        tmp_path,
        {
            "time": {
                "command": "uvx",
                "args": ["mcp-server-time", "--home=${HOME}"],
                "env": {"T": "${TOKEN}"},
            },
            "remote": {
                "url": "https://user:pw@example.com/mcp?x=1",
                "headers": {"Authorization": "Bearer ${TOKEN}"},
            },
            "old": {"type": "sse", "url": "http://127.0.0.1:8000/sse"},
        },
    )
    time, remote, old = read_config(path, ENV)
    assert time == ServerConfig(
        "time", "stdio", command="uvx", args=("mcp-server-time", "--home=/home/me"), env={"T": "s3cret"}
    )
    assert remote.transport == "http" and remote.headers == {"Authorization": "Bearer s3cret"}
    assert remote.where == "https://example.com/mcp"  # no credentials, no query
    assert "s3cret" not in repr(remote)
    assert old.transport == "sse"


def test_vs_code_s_servers_key_is_read_too(tmp_path):
    [server] = read_config(config_file(tmp_path, {"a": {"command": "x"}}, key="servers"), ENV)
    assert server.command == "x"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"command": "x", "env": {"K": "${UNSET}"}}, "it uses ${UNSET}, which is not set in the environment"),
        ({"args": ["x"]}, 'it needs a "command" (a stdio server) or a "url"'),
        ({"command": "x", "url": "http://a"}, 'give either "command" (stdio) or "url" (HTTP), not both'),
        ({"url": "ftp://a"}, '"url" must be an http:// or https:// address'),
        ({"command": "x", "args": "y"}, '"args" must be a list of strings'),
        ({"command": "x", "timeout_s": 0}, '"timeout_s" must be a number of seconds above 0'),
        ({"command": "x", "approval": "sometimes"}, '"approval" must be "auto", "always" or "never"'),
        ({"command": "x", "tools": "git_status"}, '"tools" must be a list of strings'),
    ],
)
def test_a_server_entry_that_cannot_be_used_is_a_problem_of_that_server_only(tmp_path, entry, reason):
    bad, good = read_config(config_file(tmp_path, {"bad": entry, "good": {"command": "x"}}), ENV)
    assert isinstance(bad, ServerProblem) and bad.name == "bad"
    assert reason in bad.reason and bad.reason.endswith("fix its entry in the MCP config")
    assert isinstance(good, ServerConfig)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mcpServers": {"a": {"command": "x"},}}', "is not valid JSON (line 1, column 39: Expecting"),
        ('{"servers_typo": {}}', 'has no "mcpServers" object'),
        ("[]", 'has no "mcpServers" object'),
    ],
)
def test_a_file_that_cannot_be_used_at_all_says_where_and_why(tmp_path, text, message):
    path = tmp_path / "mcp.json"
    path.write_text(text)
    with pytest.raises(McpConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_config(path, ENV)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(McpConfigError, match=r"cannot read .*nope\.json: No such file"):
        read_config(tmp_path / "nope.json", ENV)


def tool(name, read_only=None):
    annotations = None if read_only is None else types.ToolAnnotations(read_only_hint=read_only)
    return types.Tool(name=name, input_schema={"type": "object"}, annotations=annotations)


@pytest.mark.parametrize(
    ("approval", "expected"),
    [
        ("auto", {"status": "never", "commit": "always", "plain": "always"}),
        ("never", {"status": "never", "commit": "never", "plain": "never"}),
        ("always", {"status": "always", "commit": "always", "plain": "always"}),
        ({"commit": "never", "*": "always"}, {"status": "always", "commit": "never", "plain": "always"}),
        ({"plain": "never"}, {"status": "never", "commit": "always", "plain": "never"}),
    ],
)
def test_approval_is_resolved_from_the_policy_and_read_only_hint(tmp_path, approval, expected):
    [config] = read_config(config_file(tmp_path, {"git": {"command": "x", "approval": approval}}), ENV)
    tools = [tool("status", read_only=True), tool("commit", read_only=False), tool("plain")]
    assert {t.name: approval_for(config, t) for t in tools} == expected
