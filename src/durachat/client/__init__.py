"""The Python client library of the DuraChat protocol.

```python
async with DuraChatClient("http://127.0.0.1:5787", token) as client:
    async for event in client.chat("Explain durable streams"):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
```

`chat()` resumes after lost connections by the rules of PROTOCOL.md section 5;
`state.py` and `reply.py` hold those rules without I/O, `connection.py` the
sockets, `http.py` the HTTP helpers.
"""

from durachat.client.connection import DEFAULT_URL, DuraChatClient, ReplyStream
from durachat.client.errors import AuthError, ClientError, ReplyFailed, ServerError, Unreachable
from durachat.client.events import ChatEvent, Done, Reconnecting, Rewound, Started, TextDelta
from durachat.client.http import ConversationPage

__all__ = [
    "DEFAULT_URL",
    "AuthError",
    "ChatEvent",
    "ClientError",
    "ConversationPage",
    "Done",
    "DuraChatClient",
    "Reconnecting",
    "ReplyFailed",
    "ReplyStream",
    "Rewound",
    "ServerError",
    "Started",
    "TextDelta",
    "Unreachable",
]
