"""A real MCP server, built with the official MCP Python SDK, for the runtime's MCP client tests.

Runs in the peers venv (scripts/install-peers.sh, tests/python/peers-requirements.txt).
In mcp 2.x `FastMCP` was renamed `MCPServer` (`mcp.server.fastmcp` no longer exists).

Serves ONE MCPServer instance (so a tool added through one transport is visible on both) on:
  * Streamable HTTP:  http://127.0.0.1:PORT/mcp
  * legacy HTTP+SSE:  http://127.0.0.1:SSE_PORT/sse   (GET, event stream; POSTs go to /messages/?session_id=...)

Every HTTP request must carry `Authorization: Bearer <TOKEN>` (plain ASGI middleware) or gets 401.
Requests that carry an `X-Test-Header` header have its value logged (to check custom headers).

Tools:
  echo(text)               -> text content "echo: <text>"
  weather(city)            -> structuredContent {"city","temperature_c","conditions"} + its JSON as text
  fail(message)            -> isError=true, text = message
  mixed()                  -> text + image (1x1 PNG) + embedded text resource + resource link
  slow(seconds)            -> sleeps; if the client cancels (notifications/cancelled) the cancellation is recorded
  cancellations()          -> JSON list of recorded cancelled slow() calls (to verify the client sent cancel)
  add_tool(name)           -> registers a new tool `name` (returns "dynamic <name>") and sends
                              notifications/tools/list_changed (handshake-era clients) and publishes
                              ToolsListChanged on the subscriptions bus (2026-07-28 clients using subscriptions/listen)
  headers()                -> JSON of the HTTP headers of this request (authorization redacted)
  trace_context()          -> JSON of the traceparent/tracestate in this request's _meta (SEP-414)
  dotted.name()            -> a valid MCP tool name that model APIs refuse (the client must skip it)

Usage:
  python mcp_test_server.py --port 8931 --sse-port 8932 --token secret-token
  (or env MCP_TEST_PORT / MCP_TEST_SSE_PORT / MCP_TEST_TOKEN; --sse-port 0 disables SSE)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from typing import Any

import anyio
import uvicorn
from pydantic import BaseModel

from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

log = logging.getLogger("mcp_test_server")

# 1x1 transparent PNG
PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

mcp = MCPServer(name="agent-runtime-test-server", version="0.1.0")

# Advertise tools.listChanged=true on the initialize handshake. MCPServer exposes no knob for
# NotificationOptions, so wrap the low-level server's create_initialization_options (used by the
# streamable HTTP runner and by sse_app).
_ll = mcp._lowlevel_server  # noqa: SLF001
_orig_init_opts = _ll.create_initialization_options


def _init_opts(notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any):
    return _orig_init_opts(notification_options or NotificationOptions(tools_changed=True), *args, **kwargs)


_ll.create_initialization_options = _init_opts  # type: ignore[method-assign]

CANCELLED: list[dict[str, Any]] = []


class Weather(BaseModel):
    city: str
    temperature_c: float
    conditions: str


@mcp.tool(description="Echo the text back")
def echo(text: str) -> str:
    return f"echo: {text}"


@mcp.tool(description="Structured weather report")
def weather(city: str) -> Weather:
    return Weather(city=city, temperature_c=21.5, conditions="sunny")


@mcp.tool(description="Always fails with isError=true")
def fail(message: str = "boom") -> str:
    raise ToolError(message)


@mcp.tool(description="Text, image, embedded resource and resource link")
def mixed() -> CallToolResult:
    return CallToolResult(
        content=[
            TextContent(type="text", text="mixed content"),
            ImageContent(type="image", data=PNG_1X1_B64, mime_type="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(uri="file:///tmp/readme.txt", mime_type="text/plain", text="hello file"),
            ),
            ResourceLink(type="resource_link", uri="file:///tmp/other.txt", name="other.txt"),
        ]
    )


@mcp.tool(description="Sleep for `seconds` seconds, then return")
async def slow(seconds: float, ctx: Context) -> str:
    started = time.monotonic()
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        CANCELLED.append({"request_id": str(ctx.request_id), "after_s": round(time.monotonic() - started, 2)})
        log.warning("slow(%s) request %s cancelled by client", seconds, ctx.request_id)
        raise
    return f"slept {seconds}s"


@mcp.tool(description="Cancelled slow() calls seen so far")
def cancellations() -> str:
    return json.dumps(CANCELLED)


@mcp.tool(description="Register a new tool and notify clients that the tool list changed")
async def add_tool(name: str, ctx: Context) -> str:
    def dynamic() -> str:
        return f"dynamic {name}"

    mcp.add_tool(dynamic, name=name, description=f"dynamically added tool {name}")
    # Handshake-era (<= 2025-11-25) sessions: goes out on the standalone GET SSE stream
    # (streamable HTTP) or the /sse stream (legacy SSE transport).
    await ctx.session.send_tool_list_changed()
    # 2026-07-28 sessions receive list_changed only through `subscriptions/listen` streams.
    await ctx.notify_tools_changed()
    return f"added {name}"


@mcp.tool(description="HTTP headers of this request (authorization redacted)")
def headers(ctx: Context) -> str:
    hdrs = dict(ctx.headers or {})
    if "authorization" in hdrs:
        hdrs["authorization"] = hdrs["authorization"].split(" ")[0] + " <redacted>"
    return json.dumps(hdrs, sort_keys=True)


@mcp.tool(description="The trace context of this request's _meta (traceparent, tracestate)")
def trace_context(ctx: Context) -> str:
    meta = ctx.request_context.meta
    fields = meta if isinstance(meta, dict) else (meta.model_dump() if meta is not None else {})
    return json.dumps({k: v for k, v in fields.items() if k in ("traceparent", "tracestate")}, sort_keys=True)


def dotted() -> str:
    return "never offered to a model"


mcp.add_tool(dotted, name="dotted.name", description="A name model APIs refuse")


class BearerAuth:
    """Pure ASGI middleware: 401 unless `Authorization: Bearer <token>` (safe for SSE streaming)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hdrs = dict(scope.get("headers") or [])
        if hdrs.get(b"authorization") != self.expected:
            log.warning("401 for %s %s", scope.get("method"), scope.get("path"))
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="mcp-test"')],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
            return
        if b"x-test-header" in hdrs:
            log.info("X-Test-Header: %s", hdrs[b"x-test-header"].decode(errors="replace"))
        await self.app(scope, receive, send)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("MCP_TEST_PORT", "8931")))
    p.add_argument("--sse-port", type=int, default=int(os.environ.get("MCP_TEST_SSE_PORT", "8932")))
    p.add_argument("--token", default=os.environ.get("MCP_TEST_TOKEN", "secret-token"))
    p.add_argument("--json-response", action="store_true", help="answer POSTs with JSON instead of SSE")
    p.add_argument("--certfile", help="serve streamable HTTP over TLS with this certificate chain")
    p.add_argument("--keyfile", help="the certificate's private key")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    http_app = BearerAuth(
        mcp.streamable_http_app(streamable_http_path="/mcp", json_response=args.json_response, host=args.host),
        args.token,
    )
    tls = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile} if args.certfile else {}
    servers = [uvicorn.Server(uvicorn.Config(http_app, host=args.host, port=args.port, log_level="warning", **tls))]
    if args.sse_port:
        sse_app = BearerAuth(mcp.sse_app(sse_path="/sse", message_path="/messages/", host=args.host), args.token)
        servers.append(uvicorn.Server(uvicorn.Config(sse_app, host=args.host, port=args.sse_port, log_level="warning")))
    log.info(
        "streamable HTTP on http://%s:%d/mcp%s",
        args.host,
        args.port,
        f", SSE on http://{args.host}:{args.sse_port}/sse" if args.sse_port else "",
    )
    await asyncio.gather(*(s.serve() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
