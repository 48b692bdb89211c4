"""The official OpenAI Python SDK against a turn that pauses for a human approval: the whole
response and the last streamed chunk parse, and both carry `pending_approval` as an extra field.

Usage: approval_client_check.py BASE_URL SESSION_PREFIX
Prints one JSON line: {"whole": {...approval}, "whole_text": str, "streamed": {...approval}, "finish": str}.
"""

import json
import sys

from openai import OpenAI

base, prefix = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="unused")

whole = client.chat.completions.create(
    model="agent",
    messages=[{"role": "user", "content": "What time is it?"}],
    extra_headers={"X-Session-Id": f"{prefix}-whole"},
)
streamed_approval, finish = None, None
stream = client.chat.completions.create(
    model="agent",
    messages=[{"role": "user", "content": "What time is it now?"}],
    stream=True,
    extra_headers={"X-Session-Id": f"{prefix}-stream"},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
    extra = getattr(chunk, "pending_approval", None)
    if extra:
        streamed_approval = extra
print(
    json.dumps(
        {
            "whole": whole.pending_approval,
            "whole_text": whole.choices[0].message.content,
            "streamed": streamed_approval,
            "finish": finish,
        }
    )
)
