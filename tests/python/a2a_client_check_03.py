"""The official a2a-sdk at 0.3 (the line kagent speaks) against an agent runtime: card, send,
stream, get, cancel and errors on the 0.3 wire (message/send, message/stream, tasks/get,
tasks/cancel; no A2A-Version header).

Usage: a2a_client_check_03.py BASE_URL TOKEN
Prints one JSON line; the scripted model answers "hello back", a streamed answer, then a slow one.
"""

import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientJSONRPCError
from a2a.types import Message, MessageSendConfiguration, Part, Role, TaskIdParams, TaskQueryParams, TextPart

BASE, TOKEN = sys.argv[1], sys.argv[2]


def message(text: str) -> Message:
    return Message(role=Role.user, message_id=str(uuid.uuid4()), parts=[Part(root=TextPart(text=text))])


def texts(parts) -> str:
    return "".join(getattr(p.root, "text", "") for p in parts)


async def main() -> None:
    report = {}
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    card = await A2ACardResolver(http, BASE).get_agent_card()
    report["card"] = {"url": card.url, "protocol": card.protocol_version}
    plain = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)

    async for event in plain.send_message(message("hello")):
        task = event[0]
    report["send"] = {"state": task.status.state.value, "answer": texts(task.artifacts[0].parts)}
    completed = task

    final, pieces = None, []
    async for event in streaming.send_message(message("stream me")):
        task, update = event if isinstance(event, tuple) else (None, None)
        if update is not None and getattr(update, "kind", "") == "artifact-update":
            pieces.append(texts(update.artifact.parts))
        if update is not None and getattr(update, "kind", "") == "status-update":
            final = update.status.state.value
    report["stream"] = {"answer": "".join(pieces), "final": final}

    async for event in plain.send_message(message("take your time"), configuration=MessageSendConfiguration(blocking=False)):
        slow = event[0]
    await asyncio.sleep(0.5)
    got = await plain.get_task(TaskQueryParams(id=slow.id, history_length=10))
    canceled = await plain.cancel_task(TaskIdParams(id=slow.id))
    report["cancel"] = {"before": got.status.state.value, "after": canceled.status.state.value}

    try:
        await plain.get_task(TaskQueryParams(id="does-not-exist"))
    except A2AClientJSONRPCError as error:
        report["unknown_task"] = error.error.code
    try:
        await plain.cancel_task(TaskIdParams(id=completed.id))
    except A2AClientJSONRPCError as error:
        report["cancel_completed"] = error.error.code
    await http.aclose()
    print(json.dumps(report))


asyncio.run(main())
