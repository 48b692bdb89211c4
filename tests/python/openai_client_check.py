"""Talks to a running agent with the official OpenAI Python SDK and checks what any OpenAI
client relies on: model listing, a whole answer, a streamed answer with usage, a two-turn
session, and the SDK's own exception types for a bad request and a wrong key.

Usage: openai_client_check.py BASE_URL API_KEY AGENT_NAME
Exits non-zero with the failed check on the first problem. Asserts on structure, never on the
small model's wording.
"""

import json
import sys
import uuid

import httpx
import openai


def main() -> None:
    base_url, api_key, agent = sys.argv[1], sys.argv[2], sys.argv[3]
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=120)
    report = {"sdk": openai.__version__}

    models = [m.id for m in client.models.list().data]
    assert agent in models, f"the agent is listed as a model: {models}"

    question = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(model=agent, messages=question, max_tokens=16)
    assert whole.object == "chat.completion", whole
    assert isinstance(whole.choices[0].message.content, str), whole
    assert whole.choices[0].finish_reason in ("stop", "length"), whole
    assert whole.usage is not None and whole.usage.completion_tokens > 0, whole.usage
    report["non_streaming"] = whole.choices[0].message.content

    chunks = list(
        client.chat.completions.create(
            model=agent, messages=question, max_tokens=16, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks, "a stream has chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks), chunks
    assert len({c.id for c in chunks}) == 1, "one id per answer"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"]), finishes
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]
    report["streaming"] = text

    session = f"sdk-{uuid.uuid4().hex[:8]}"
    headers = {"X-Session-Id": session}
    first = client.chat.completions.create(
        model=agent, messages=[{"role": "user", "content": "My name is Ada."}], max_tokens=12, extra_headers=headers
    )
    second = client.chat.completions.create(
        model=agent, messages=[{"role": "user", "content": "What is my name?"}], max_tokens=12, extra_headers=headers
    )
    assert second.usage.prompt_tokens > first.usage.prompt_tokens, (
        "the second turn's prompt carries the first turn",
        first.usage,
        second.usage,
    )
    stored = httpx.get(f"{base_url}/v1/sessions/{session}", headers={"Authorization": f"Bearer {api_key}"}).json()
    contents = [m.get("content") for m in stored["messages"]]
    assert stored["turns"] == 2 and contents[0] == "My name is Ada." and contents[2] == "What is my name?", stored
    report["session_turns"] = stored["turns"]

    try:
        client.chat.completions.create(model=agent, messages=[])
        raise AssertionError("an empty conversation must be refused")
    except openai.BadRequestError as error:
        assert error.status_code == 400 and "messages" in str(error), error
    try:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model=agent, messages=question
        )
        raise AssertionError("a wrong key must be refused")
    except openai.AuthenticationError as error:
        assert error.status_code == 401, error

    print(json.dumps(report))


if __name__ == "__main__":
    main()
