#!/usr/bin/env python3
# Interop test client: drives an MCP server (normally Switchboard) with the official
# Python `mcp` SDK *client* (a real third-party implementation, pinned in
# requirements.txt) and prints ONE JSON object describing what it saw, so Rust
# integration tests can assert on it.  Run it with $SWITCHBOARD_TEST_PYTHON
# (see scripts/test-deps.sh and tests/interop/README.md).
"""Third-party MCP client for Switchboard's interop tests.

Usage:
  mcp_client.py --transport streamable-http|sse --url URL
                [--call TOOL [--args JSON] [--progress]]
                [--prompt NAME [--prompt-args JSON]]
                [--read URI]
                [--header K=V ...]
                [--sampling-reply TEXT] [--elicit-accept JSON] [--root URI ...]
                [--mode legacy|auto|default] [--timeout SECONDS]
  mcp_client.py --transport stdio --command "node /path/to/server.js stdio" [...]

Output (stdout, one line of JSON):
  {"server_info": {...}, "protocol_version": "...", "capabilities": {...},
   "instructions": str|null, "tools": [names], "prompts": [names],
   "resources": [uris], "resource_templates": [uriTemplates],
   "call": CallToolResult|null, "prompt": GetPromptResult|null,
   "read": ReadResourceResult|null, "progress": [...]|null,
   "sampling_requests": [params...], "elicitation_requests": [params...],
   "roots_requests": N}
Results are dumped with model_dump(mode="json", by_alias=True, exclude_none=True),
i.e. in wire (camelCase) form.  A tool result with isError=true is still a success.

Exit status: 0 on success.  1 on failure, with a message on stderr; if the failure
was a JSON-RPC error answer to one of the requested operations, the JSON object is
still printed, with an extra "error": {"code", "message", "data"} and
"failed_operation" key.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import traceback
from contextlib import AsyncExitStack
from typing import Any

import anyio
import mcp.types as types
from mcp import Client
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

CLIENT_INFO = types.Implementation(name="switchboard-interop-client", version="1.0.0")
SAMPLING_MODEL = "switchboard-test-model"


class OperationFailed(Exception):
    def __init__(self, operation: str, error: MCPError) -> None:
        super().__init__(f"{operation} failed: MCP error {error.code}: {error.message}")
        self.operation = operation
        self.error = error


def dump(model: Any) -> Any:
    if model is None:
        return None
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"mcp_client.py: {flag} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"mcp_client.py: {flag} must be a JSON object")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mcp_client.py", description="Drive an MCP server with the Python mcp SDK client; print JSON."
    )
    p.add_argument("--transport", required=True, choices=["streamable-http", "sse", "stdio"])
    p.add_argument("--url", help="server URL (streamable-http: the MCP endpoint, sse: the GET /sse endpoint)")
    p.add_argument("--command", help="stdio only: server command line (split with shlex)")
    p.add_argument("--header", action="append", default=[], metavar="K=V", help="extra HTTP header (repeatable)")
    p.add_argument("--call", metavar="TOOL", help="call this tool")
    p.add_argument("--args", default="{}", metavar="JSON", help="tool arguments (JSON object)")
    p.add_argument("--progress", action="store_true", help="request progress for --call and record notifications")
    p.add_argument("--prompt", metavar="NAME", help="get this prompt")
    p.add_argument("--prompt-args", default="{}", metavar="JSON", help="prompt arguments (JSON object)")
    p.add_argument("--read", metavar="URI", help="read this resource")
    p.add_argument("--sampling-reply", metavar="TEXT", help="advertise sampling; answer sampling/createMessage with TEXT")
    p.add_argument(
        "--elicit-accept", metavar="JSON", help="advertise elicitation; accept elicitation/create with this content"
    )
    p.add_argument("--root", action="append", default=[], metavar="URI", help="advertise roots; answer roots/list")
    p.add_argument(
        "--mode",
        choices=["legacy", "auto", "default"],
        default="legacy",
        help="legacy: initialize handshake (default); auto: probe server/discover first, fall back to initialize;"
        " default: the SDK's high-level mcp.Client with its default mode (what a new user gets)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="overall deadline in seconds (default 60)")
    p.add_argument("--verbose", action="store_true", help="SDK debug logging and tracebacks on stderr")
    a = p.parse_args(argv)

    if a.transport == "stdio":
        if not a.command:
            p.error("--transport stdio needs --command")
    elif not a.url:
        p.error(f"--transport {a.transport} needs --url")
    a.headers = {}
    for h in a.header:
        k, sep, v = h.partition("=")
        if not sep or not k:
            p.error(f"--header must be K=V, got {h!r}")
        a.headers[k] = v
    a.tool_args = parse_json_object(a.args, "--args")
    a.prompt_arguments = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in parse_json_object(a.prompt_args, "--prompt-args").items()
    }
    a.elicit_content = parse_json_object(a.elicit_accept, "--elicit-accept") if a.elicit_accept is not None else None
    return a


async def list_all(fetch: Any, attr: str, by_cursor: bool = False) -> list[Any]:
    """Follow nextCursor pagination of a list_* method (ClientSession's take params=,
    mcp.Client's take cursor=)."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        if by_cursor:
            page = await fetch(cursor=cursor)
        else:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await fetch(params=params)
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if not cursor:
            return items


def empty_output() -> dict[str, Any]:
    return {
        "server_info": None,
        "protocol_version": None,
        "capabilities": None,
        "instructions": None,
        "tools": [],
        "prompts": [],
        "resources": [],
        "resource_templates": [],
        "call": None,
        "prompt": None,
        "read": None,
        "progress": None,
        "sampling_requests": [],
        "elicitation_requests": [],
        "roots_requests": 0,
    }


async def run(a: argparse.Namespace, out: dict[str, Any]) -> None:
    async def sampling_cb(
        ctx: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        out["sampling_requests"].append(dump(params))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=a.sampling_reply),
            model=SAMPLING_MODEL,
            stop_reason="endTurn",
        )

    async def elicitation_cb(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        out["elicitation_requests"].append(dump(params))
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="accept")  # URL mode: consent only, no content
        return types.ElicitResult(action="accept", content=a.elicit_content)

    async def roots_cb(ctx: ClientRequestContext) -> types.ListRootsResult:
        out["roots_requests"] += 1
        return types.ListRootsResult(roots=[types.Root(uri=u) for u in a.root])

    callbacks: dict[str, Any] = {
        "sampling_callback": sampling_cb if a.sampling_reply is not None else None,
        "elicitation_callback": elicitation_cb if a.elicit_content is not None else None,
        "list_roots_callback": roots_cb if a.root else None,
    }
    async with AsyncExitStack() as stack:
        if a.transport == "streamable-http":
            http = await stack.enter_async_context(create_mcp_http_client(headers=a.headers or None))
            transport = streamable_http_client(a.url, http_client=http)
        elif a.transport == "sse":
            transport = sse_client(a.url, headers=a.headers or None)
        else:
            argv = shlex.split(a.command)
            transport = stdio_client(StdioServerParameters(command=argv[0], args=argv[1:]))

        client: Client | None = None
        if a.mode == "default":
            # The high-level client exactly as a new user writes it: no mode= argument, so
            # the SDK's default negotiation (server/discover first on this SDK version).
            client = await stack.enter_async_context(Client(transport, client_info=CLIENT_INFO, **callbacks))
            session = client.session
        else:
            read, write = await stack.enter_async_context(transport)
            session = await stack.enter_async_context(
                ClientSession(read, write, client_info=CLIENT_INFO, **callbacks)
            )
            if a.mode == "auto":
                from mcp.client._probe import negotiate_auto  # same policy as mcp.Client(mode="auto")

                await negotiate_auto(session)
            else:
                await session.initialize()
        api: Any = client if client is not None else session
        by_cursor = client is not None

        out["server_info"] = dump(session.server_info)
        out["protocol_version"] = session.protocol_version
        caps = session.server_capabilities
        out["capabilities"] = dump(caps)
        out["mode"] = a.mode
        out["instructions"] = session.instructions

        async def op(name: str, coro: Any) -> Any:
            try:
                return await coro
            except MCPError as e:
                raise OperationFailed(name, e) from e

        if caps is None or caps.tools is not None:
            tools = await op("tools/list", list_all(api.list_tools, "tools", by_cursor))
            out["tools"] = [t.name for t in tools]
        if caps is not None and caps.prompts is not None:
            prompts = await op("prompts/list", list_all(api.list_prompts, "prompts", by_cursor))
            out["prompts"] = [p.name for p in prompts]
        if caps is not None and caps.resources is not None:
            resources = await op("resources/list", list_all(api.list_resources, "resources", by_cursor))
            out["resources"] = [str(r.uri) for r in resources]
            templates = await op(
                "resources/templates/list", list_all(api.list_resource_templates, "resource_templates", by_cursor)
            )
            out["resource_templates"] = [t.uri_template for t in templates]

        if a.call is not None:
            progress_cb = None
            if a.progress:
                out["progress"] = []

                async def progress_cb(progress: float, total: float | None, message: str | None) -> None:
                    out["progress"].append({"progress": progress, "total": total, "message": message})

            result = await op(
                "tools/call", api.call_tool(a.call, a.tool_args, progress_callback=progress_cb)
            )
            out["call"] = dump(result)
        if a.prompt is not None:
            out["prompt"] = dump(await op("prompts/get", api.get_prompt(a.prompt, a.prompt_arguments)))
        if a.read is not None:
            out["read"] = dump(await op("resources/read", api.read_resource(a.read)))

        # All work is done.  A server-initiated message still in flight (e.g. the
        # everything server's delayed roots/list) makes the SDK log a harmless
        # BrokenResourceError traceback while the streams close: keep stderr clean.
        for name in ("mcp.client.streamable_http", "mcp.client.sse", "mcp.client.stdio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for e in exc.exceptions:
            leaves.extend(leaf_exceptions(e))
        return leaves
    return [exc]


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if a.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        # The SDK logs transport failures with full tracebacks; main() reports them in one line.
        logging.getLogger("mcp").setLevel(logging.CRITICAL)
    out = empty_output()

    async def guarded() -> None:
        with anyio.fail_after(a.timeout):
            await run(a, out)

    try:
        anyio.run(guarded)
    except BaseException as exc:  # noqa: BLE001 - report anything, exit 1
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        leaves = leaf_exceptions(exc)
        failed = next((e for e in leaves if isinstance(e, OperationFailed)), None)
        if failed is not None:
            out["error"] = dump(failed.error.error)
            out["failed_operation"] = failed.operation
            print(json.dumps(out), flush=True)
            print(f"mcp_client.py: {failed}", file=sys.stderr)
            return 1
        for e in leaves:
            if isinstance(e, TimeoutError):
                print(f"mcp_client.py: timed out after {a.timeout}s", file=sys.stderr)
                break
            desc = f"{type(e).__name__}: {e}"
            if isinstance(e, MCPError):
                desc = f"MCP error {e.code}: {e.message}"
            print(f"mcp_client.py: {desc}", file=sys.stderr)
        if a.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
