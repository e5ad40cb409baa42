"""A real MCP client (the official Python SDK, `mcp` from PyPI) driving `spectacular mcp`.

    client.py <spectacular binary> <project directory>

Over stdio, as an IDE would: the handshake, the tool list, a mission validated, an invalid
one refused with its located diagnostics, a run started, its status and board read, its
approval gate approved, its events read as a resource. Prints one JSON object of what it saw
on stdout (the integration test `mcp::python_client` checks it); exits non-zero on the first
step that does not go as expected.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def structured(result):
    if result.isError if hasattr(result, "isError") else result.is_error:
        raise SystemExit(f"tool error: {result.content}")
    content = getattr(result, "structuredContent", None)
    if content is None:
        content = getattr(result, "structured_content", None)
    if content is None:
        content = json.loads(result.content[0].text)
    return content


async def until(session, tool, arguments, done, what):
    for _ in range(600):
        value = structured(await session.call_tool(tool, arguments))
        if done(value):
            return value
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


async def main(binary, project):
    seen = {"notifications": []}

    async def on_log(params):
        data = params.data if hasattr(params, "data") else params.get("data")
        seen["notifications"].append(data)

    server = StdioServerParameters(command=binary, args=["mcp"], cwd=project)
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            init = await session.initialize()
            seen["server"] = init.server_info.name if hasattr(init, "server_info") else init.serverInfo.name
            tools = await session.list_tools()
            seen["tools"] = sorted(t.name for t in tools.tools)

            valid = structured(await session.call_tool("validate_mission", {"mission": "mission.yaml"}))
            seen["valid"] = valid["valid"]
            try:
                await session.call_tool("validate_mission", {"mission": "broken.yaml"})
                raise SystemExit("an invalid mission was not an error")
            except MCPError as error:
                seen["invalid"] = {"code": error.code, "message": error.message, "data": error.data}

            started = structured(await session.call_tool("start_run", {"mission": "mission.yaml"}))
            run = started["run_id"]
            seen["run_id"] = run
            status = await until(
                session, "run_status", {"run": run}, lambda s: s["status"] == "suspended", "the gate"
            )
            seen["suspended_status"] = status["status"]
            seen["board"] = structured(await session.call_tool("board", {"run": run}))
            approved = structured(await session.call_tool("approve", {"run": run, "phase": "gate"}))
            seen["resumed"] = approved["resumed"]
            status = await until(
                session, "run_status", {"run": run}, lambda s: s["status"] == "succeeded", "the end"
            )
            seen["final_status"] = status["status"]
            events = await session.read_resource(f"spectacular://runs/{run}/events")
            seen["events"] = [json.loads(line)["type"] for line in events.contents[0].text.splitlines()]
            # Let the last notifications arrive.
            await asyncio.sleep(0.5)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
