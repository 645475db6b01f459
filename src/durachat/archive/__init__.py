"""Export and import: conversations as Markdown and JSON, and ChatGPT's export.

`ours.py` is DuraChat's JSON (the whole tree, every branch), `markdown.py` the
current branch as Markdown, `chatgpt.py` reads ChatGPT's `conversations.json`,
`reader.py` tells the formats apart, `exporter.py` gathers a user's data from the
store. Nothing here speaks HTTP or reads settings.
"""
