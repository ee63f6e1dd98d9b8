// Drive an MCP server with the official TypeScript SDK client, as the Inspector and the desktop
// and IDE clients built on that SDK do: list the tools (so the client caches their output
// schemas and validates every result against them), then make the calls the config names.
//
// Usage: node client.mjs '<config JSON>'
//   {"transport": "stdio", "command": "...", "args": [...], "env": {...}, "cwd": "..."}
//   {"transport": "http", "url": "http://127.0.0.1:PORT/mcp", "token": "..." (optional)}
//   plus "logLevel" (optional, sent with logging/setLevel first) and
//   "calls": [{"name": "...", "arguments": {...}}]
// Prints one JSON object: the server's capabilities, its tools, and per call either
// {"result": CallToolResult} or {"error": {"code", "message"}}, and the log messages received.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const config = JSON.parse(process.argv[2]);

function transportFor(config) {
  if (config.transport === "stdio") {
    return new StdioClientTransport({
      command: config.command,
      args: config.args ?? [],
      env: { ...process.env, ...(config.env ?? {}) },
      cwd: config.cwd,
      stderr: "inherit",
    });
  }
  const headers = config.token ? { Authorization: `Bearer ${config.token}` } : {};
  return new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers } });
}

const client = new Client({ name: "funcsmith-ts-test", version: "1.0.0" });
const logs = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
  logs.push(notification.params);
});
await client.connect(transportFor(config));

const report = { capabilities: client.getServerCapabilities(), tools: [], calls: [], logs };
if (config.logLevel) {
  await client.setLoggingLevel(config.logLevel);
}
const { tools } = await client.listTools();
report.tools = tools.map((tool) => ({ name: tool.name, outputSchema: tool.outputSchema ?? null }));
for (const call of config.calls ?? []) {
  try {
    report.calls.push({ result: await client.callTool({ name: call.name, arguments: call.arguments }) });
  } catch (error) {
    report.calls.push({ error: { code: error.code ?? null, message: String(error.message ?? error) } });
  }
}
// A ping is answered after every notification sent before it: the logs are all in.
await client.ping();
await client.close();
process.stdout.write(JSON.stringify(report));
