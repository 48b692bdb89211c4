"""The official a2a-sdk (1.x) client against an agent runtime: card, send, stream, get, cancel,
errors, an approval answered through input-required, and a wrong token refused.

Usage: a2a_client_check.py BASE_URL TOKEN
Prints one JSON line with what it saw; the Rust test asserts on it. The agent's scripted model
answers, in order: "hello back", a streamed answer, a slow answer (canceled), a clock tool call
that needs an approval, then "It is noon.".
"""

import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

BASE, TOKEN = sys.argv[1], sys.argv[2]


def message(text: str, task_id: str = "", context_id: str = "") -> Message:
    return Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)], task_id=task_id, context_id=context_id)


def texts(parts) -> str:
    return "".join(p.text for p in parts)


async def main() -> None:
    report = {}
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    card = await A2ACardResolver(http, BASE).get_agent_card()
    report["card"] = {"name": card.name, "interfaces": [i.protocol_version for i in card.supported_interfaces], "streaming": card.capabilities.streaming, "skills": [s.id for s in card.skills]}
    plain = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)

    async for event in plain.send_message(SendMessageRequest(message=message("hello"))):
        task = event.task
    report["send"] = {"state": TaskState.Name(task.status.state), "answer": texts(task.artifacts[0].parts), "context": task.context_id}
    completed = task

    kinds, pieces, final = [], [], None
    async for event in streaming.send_message(SendMessageRequest(message=message("stream me"))):
        kind = event.WhichOneof("payload")
        kinds.append(kind)
        if kind == "artifact_update":
            pieces.append(texts(event.artifact_update.artifact.parts))
        if kind == "status_update":
            final = TaskState.Name(event.status_update.status.state)
    report["stream"] = {"first": kinds[0], "kinds": sorted(set(kinds)), "answer": "".join(pieces), "final": final}

    request = SendMessageRequest(message=message("take your time"))
    request.configuration.return_immediately = True
    async for event in plain.send_message(request):
        slow = event.task
    await asyncio.sleep(0.5)
    got = await plain.get_task(GetTaskRequest(id=slow.id, history_length=10))
    canceled = await plain.cancel_task(CancelTaskRequest(id=slow.id))
    report["cancel"] = {"before": TaskState.Name(got.status.state), "after": TaskState.Name(canceled.status.state)}

    try:
        await plain.get_task(GetTaskRequest(id="does-not-exist"))
        report["unknown_task"] = "no error"
    except TaskNotFoundError as error:
        report["unknown_task"] = "TaskNotFoundError"
    try:
        await plain.cancel_task(CancelTaskRequest(id=completed.id))
        report["cancel_completed"] = "no error"
    except TaskNotCancelableError:
        report["cancel_completed"] = "TaskNotCancelableError"

    async for event in plain.send_message(SendMessageRequest(message=message("What time is it?"))):
        waiting = event.task
    approval = dict(waiting.metadata)["approval"] if waiting.metadata else None
    async for event in plain.send_message(SendMessageRequest(message=message("approve", task_id=waiting.id, context_id=waiting.context_id))):
        approved = event.task
    report["approval"] = {
        "waiting": TaskState.Name(waiting.status.state),
        "tool": approval["tool"] if approval else None,
        "after": TaskState.Name(approved.status.state),
        "answer": texts(approved.artifacts[0].parts) if approved.artifacts else None,
    }

    wrong = httpx.AsyncClient(headers={"Authorization": "Bearer wrong"}, timeout=30)
    refused = ClientFactory(ClientConfig(streaming=False, httpx_client=wrong)).create(card)
    try:
        async for _ in refused.send_message(SendMessageRequest(message=message("let me in"))):
            pass
        report["wrong_token"] = "accepted"
    except Exception as error:  # the SDK raises its HTTP error type
        report["wrong_token"] = type(error).__name__ + ": " + str(error)[:120]
    for client in (plain, streaming, refused):
        await client.close()
    await http.aclose()
    await wrong.aclose()
    print(json.dumps(report))


asyncio.run(main())
