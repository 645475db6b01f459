"""Attachments against a real server: upload, type from content, limits enforced
while the body streams, EXIF stripped, files served only to their owner, and files
that reach the model (text inlined with its name, images to a vision model only).
"""

from __future__ import annotations

import http.client
import io
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.e2e.browser import Answer, call
from tests.e2e.conftest import MakeServer
from tests.e2e.server import Server
from tests.e2e.test_export_import import turn
from tests.e2e.test_http_and_auth import bearer, two_users  # noqa: F401 (fixture)
from tests.e2e.wsclient import WsClient, of_type

ORIENTATION, MAKE = 0x0112, 0x010F


def png(width: int = 64, height: int = 48, comment: str = "") -> bytes:
    info = PngInfo()
    if comment:
        info.add_text("Comment", comment)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif(width: int = 40, height: int = 20) -> bytes:
    """A JPEG whose EXIF names a camera and says 'rotate 90 degrees' (orientation 6)."""
    exif = Image.Exif()
    exif[MAKE] = "SecretCamera"
    exif[ORIENTATION] = 6
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (written by hand, offsets computed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def upload(server: Server, name: str, data: bytes, headers: dict[str, str] | None = None) -> Answer:
    """POST the file as the raw body, as the web UI does."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", f"/api/uploads?name={quote(name)}", body=data, headers=headers or {})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return Answer(response.status, orjson.loads(raw) if raw else None, response.msg)


def download(server: Server, upload_id: str, headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/api/uploads/{upload_id}", headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.msg, body


async def chat(
    server: Server, frame: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    client = await WsClient.connect(server.ws, headers=headers)
    started = await turn(client, {"type": "start_chat", **frame})
    await client.close()
    catchup = call(
        server, "GET", f"/api/conversations/{started['conversationId']}", headers=headers
    ).body
    return started, catchup["messages"]


async def test_a_text_file_is_inlined_with_its_name_and_shown_as_a_chip(
    make_server: MakeServer, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "files-elsewhere"
    server = make_server({"DURACHAT_UPLOAD_DIR": str(elsewhere)})
    code = "def answer():\n    return 42  # zebra-lantern\n"
    sent = upload(server, "answer.py", code.encode())
    assert sent.status == 201, sent.body
    item = sent.body["upload"]
    assert (item["kind"], item["name"], item["size"]) == ("text", "answer.py", len(code))
    assert item["mediaType"].startswith("text/plain") and item["chars"] == len(code)
    assert (elsewhere / item["id"]).read_bytes() == code.encode()  # a server-chosen name
    _, messages = await chat(
        server, {"prompt": "What does it return?", "attachments": [item["id"]]}
    )
    user, reply = messages
    assert user["content"] == "What does it return?"  # the chip, not the inlined blob
    assert [a["id"] for a in user["attachments"]] == [item["id"]]
    assert user["attachments"][0]["name"] == "answer.py"
    assert "File `answer.py`:" in reply["content"] and "zebra-lantern" in reply["content"]


async def test_the_type_comes_from_the_content_never_the_name(server: Server) -> None:
    image = upload(server, "notes.txt", png())
    assert image.status == 201 and image.body["upload"]["kind"] == "image"
    assert image.body["upload"]["mediaType"] == "image/png"
    assert (image.body["upload"]["width"], image.body["upload"]["height"]) == (64, 48)
    text = upload(server, "photo.png", b"just words, not pixels\n")
    assert text.status == 201 and text.body["upload"]["kind"] == "text"
    binary = upload(server, "data.txt", b"\x00\x01\x02\xff\xfe binary")
    assert (binary.status, binary.code) == (400, "bad_request")
    forged = upload(server, "x.png", b"\x89PNG\r\n\x1a\n" + b"not really a png")
    assert (forged.status, forged.code) == (400, "bad_request")
    assert upload(server, "empty.txt", b"").status == 400
    document = upload(server, "paper.pdf", pdf("Quarterly figures rose"))
    assert document.status == 201, document.body
    assert document.body["upload"]["kind"] == "pdf"
    _, messages = await chat(
        server, {"prompt": "Sum up", "attachments": [document.body["upload"]["id"]]}
    )
    assert "Quarterly figures rose" in messages[1]["content"]


async def test_images_lose_their_metadata_and_reach_a_vision_model(server: Server) -> None:
    sent = upload(server, "holiday.jpg", jpeg_with_exif(40, 20))
    assert sent.status == 201, sent.body
    item = sent.body["upload"]
    assert (item["width"], item["height"]) == (20, 40), "EXIF orientation applied"
    status, headers, body = download(server, item["id"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"SecretCamera" not in body and b"Exif" not in body
    assert len(Image.open(io.BytesIO(body)).getexif()) == 0
    marked = upload(server, "chart.png", png(comment="secret-png-comment"))
    _, _, png_body = download(server, marked.body["upload"]["id"])
    assert b"secret-png-comment" not in png_body
    frame = {
        "prompt": "What is in these?",
        "attachments": [item["id"], marked.body["upload"]["id"]],
    }
    _, messages = await chat(server, frame)
    assert "- **Images:** image 20x40, image 64x48" in messages[1]["content"]


def test_over_the_limit_is_refused_before_the_body_is_read(make_server: MakeServer) -> None:
    server = make_server(
        {
            "DURACHAT_UPLOAD_MAX_BYTES": "1000",
            "DURACHAT_UPLOAD_MAX_PIXELS": "1000",
            "DURACHAT_UPLOAD_MAX_TEXT_CHARS": "100",
        }
    )
    # a Content-Length over the limit: 413 at once, while the body is still unsent
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(
            b"POST /api/uploads?name=big.bin HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 50000000\r\n\r\n" + b"a" * 100
        )
        answer = b""
        while b"too_large" not in answer and (part := raw.recv(4096)):
            answer += part
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"too_large" in answer
    # no Content-Length (chunked): counted as it arrives
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    chunks = (b"x" * 400 for _ in range(50))
    connection.request("POST", "/api/uploads?name=a.txt", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and b"too_large" in response.read()
    connection.close()
    too_many_pixels = upload(server, "big.png", png(40, 40))
    assert (too_many_pixels.status, too_many_pixels.code) == (413, "too_large")
    assert "pixels" in too_many_pixels.body["error"]["message"]
    too_much_text = upload(server, "long.txt", b"w" * 101)
    assert (too_much_text.status, too_much_text.code) == (413, "too_large")
    assert upload(server, "ok.txt", b"w" * 100).status == 201


async def test_uploads_are_their_owners_only(
    two_users: tuple[Server, str, str],  # noqa: F811
) -> None:
    server, alice, bob = two_users
    sent = upload(server, "diary.txt", b"dear diary", bearer(alice))
    upload_id = sent.body["upload"]["id"]
    assert download(server, upload_id, bearer(alice))[0] == 200
    assert download(server, upload_id, bearer(bob))[0] == 404
    assert download(server, upload_id)[0] == 401
    assert upload(server, "x.txt", b"hello").status == 401
    client = await WsClient.connect(server.ws, headers=bearer(bob))
    await client.send({"type": "start_chat", "prompt": "read it", "attachments": [upload_id]})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "not_found", error
    await client.close()
    assert (
        call(server, "GET", "/api/conversations", headers=bearer(bob)).body["conversations"] == []
    )


async def test_a_model_without_vision_refuses_images_before_anything_is_stored(
    make_server: MakeServer, tmp_path: Path
) -> None:
    config = tmp_path / "blind.toml"
    config.write_text('[[models]]\nid = "demo/echo"\nvision = false\n')
    server = make_server({"DURACHAT_CONFIG": str(config)})
    image_id = upload(server, "cat.png", png()).body["upload"]["id"]
    client = await WsClient.connect(server.ws)
    await client.send({"type": "start_chat", "prompt": "what is it?", "attachments": [image_id]})
    error = (await client.until(of_type("error")))[-1]
    assert error["code"] == "bad_request" and "cannot see images" in error["message"]
    await client.close()
    assert call(server, "GET", "/api/conversations").body["conversations"] == []
    answer = call(server, "POST", "/api/chat", {"prompt": "and now?", "attachments": [image_id]})
    assert (answer.status, answer.code) == (400, "bad_request")
