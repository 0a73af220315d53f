"""The MCP gateway (`sentra-lang mcp-proxy`): a Model Context Protocol server over standard input
and output that wraps another one and decides every tool call before it is forwarded.

`gateway` moves the messages (built on the official `mcp` SDK's stdio transports and types);
`verdicts` turns decisions into MCP answers and tells which tools a policy can never allow.
The `mcp` package (the `mcp` extra) is imported only by `gateway`.
"""
