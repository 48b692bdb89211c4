"""Talks to `agent-runtime serve-model` with the official OpenAI Python SDK: model listing,
completions whole and streamed (the stream's text equals the whole answer: greedy), a chat
completion through the chat template, embeddings of the built-in MiniLM, and the SDK's error
types for an unknown model, a parameter out of range, tools, and a prompt too long.

Usage: model_server_check.py BASE_URL SERVED_NAME
Prints a JSON report; exits non-zero with the failed check on the first problem.
"""

import json
import math
import sys

import openai


def main() -> None:
    base_url, served = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    report = {"sdk": openai.__version__}

    models = [m.id for m in client.models.list().data]
    assert served in models and "all-MiniLM-L6-v2" in models, models

    prompt = "Question: What is the capital of France?\nAnswer:"
    whole = client.completions.create(model=served, prompt=prompt, max_tokens=16, temperature=0)
    assert whole.object == "text_completion", whole
    assert whole.choices[0].finish_reason in ("stop", "length"), whole
    assert whole.usage.prompt_tokens > 5 and whole.usage.completion_tokens > 0, whole.usage
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    report["completion"] = whole.choices[0].text

    pieces, finish, usage = [], None, None
    for chunk in client.completions.create(
        model=served, prompt=prompt, max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}
    ):
        if chunk.choices:
            pieces.append(chunk.choices[0].text)
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert len([p for p in pieces if p]) >= 2, f"streamed in pieces: {pieces}"
    assert "".join(pieces) == whole.choices[0].text, (pieces, whole.choices[0].text)
    assert finish == whole.choices[0].finish_reason and usage == whole.usage, (finish, usage)

    chat = client.chat.completions.create(
        model=served, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
    )
    assert chat.object == "chat.completion" and isinstance(chat.choices[0].message.content, str), chat
    assert chat.choices[0].message.role == "assistant" and chat.usage.completion_tokens > 0, chat
    report["chat"] = chat.choices[0].message.content

    embeddings = client.embeddings.create(model="all-MiniLM-L6-v2", input=["Paris is in France.", "Cats purr."])
    assert [e.index for e in embeddings.data] == [0, 1], embeddings
    vector = embeddings.data[0].embedding
    assert abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-3, "normalised"
    assert embeddings.usage.prompt_tokens > 4, embeddings.usage
    report["embedding_dimension"] = len(vector)

    expect_error(openai.NotFoundError, "is not served here", lambda: client.completions.create(model="nope", prompt="x"))
    expect_error(
        openai.BadRequestError,
        "temperature",
        lambda: client.completions.create(model=served, prompt="x", temperature=5),
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    expect_error(
        openai.BadRequestError,
        "tools",
        lambda: client.chat.completions.create(model=served, messages=[{"role": "user", "content": "x"}], tools=[tool]),
    )
    expect_error(
        openai.BadRequestError,
        "tokens",
        lambda: client.completions.create(model=served, prompt="word " * 5000, max_tokens=4),
    )
    print(json.dumps(report))


def expect_error(kind, needle, call) -> None:
    try:
        call()
    except kind as error:
        assert needle in str(error), f"{kind.__name__} without {needle!r}: {error}"
        return
    raise AssertionError(f"expected {kind.__name__} ({needle})")


if __name__ == "__main__":
    main()
