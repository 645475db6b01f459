"""Attachments: files a user uploads and then attaches to a message.

`detect` names a file's type from its content, `images` and `pdfs` check and clean
what they accept, `intake` turns an upload's bytes into what is kept, `files` keeps
it under server-chosen names, and `prompt` puts attachments into what a model is
sent. The HTTP surface is `api/uploads.py`.
"""
