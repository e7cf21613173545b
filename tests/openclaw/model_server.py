#!/usr/bin/env python3
"""A scripted OpenAI-compatible model server for the OpenClaw integration test.

It listens on 127.0.0.1 only and plays a fixed script, no model involved: when the newest
user message holds `RUN: <command>`, it answers with one call of OpenClaw's `exec` tool
running <command>; once that call's result comes back, it answers with a final text that
quotes the result (`EXEC RESULT:` then the tool output). Every request is appended to the
log file, one JSON line each, so the test can see what OpenClaw sent.

Usage: model_server.py PORT_FILE LOG_FILE   (binds an ephemeral port, writes it to PORT_FILE)
"""

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "occ-scripted"
RUN = re.compile(r"RUN: (.+)")


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict)
        )
    return ""


def reply_for(messages):
    """The next step of the script: ("tool", command) or ("text", body).

    Walks back over the user's turn. OpenClaw appends its own context as user messages
    (marked BEGIN_OPENCLAW_INTERNAL_CONTEXT), after the typed message and after tool results.
    """
    for m in reversed(messages):
        role = m.get("role")
        body = text_of(m.get("content"))
        if role == "tool":
            return ("text", "EXEC RESULT:\n" + body)
        if role == "assistant":
            break
        if role == "user" and "BEGIN_OPENCLAW_INTERNAL_CONTEXT" not in body:
            found = RUN.findall(body)
            if found:
                return ("tool", found[-1].strip())
    return ("text", "no RUN: line in the user's turn")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "occ"}]})
        else:
            self.send_json(404, {"error": {"message": "not found: " + self.path}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "bad json"}})
            return
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "body": req}) + "\n")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": "not found: " + self.path}})
            return
        kind, value = reply_for(req.get("messages") or [])
        tools = [t.get("function", {}).get("name") for t in req.get("tools") or []]
        if kind == "tool" and "exec" not in tools:
            kind, value = "text", "the request offered no exec tool (tools: %s)" % tools
        created = int(time.time())
        rid = "chatcmpl-occ-%d" % created
        if kind == "tool":
            call = {"id": "call_occ_%d" % created, "type": "function",
                    "function": {"name": "exec",
                                 "arguments": json.dumps({"command": value})}}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": value}
            finish = "stop"
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        if not req.get("stream"):
            self.send_json(200, {"id": rid, "object": "chat.completion", "created": created,
                                 "model": MODEL, "usage": usage,
                                 "choices": [{"index": 0, "message": message,
                                              "finish_reason": finish}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def chunk(delta, finish_reason=None, with_usage=False):
            body = {"id": rid, "object": "chat.completion.chunk", "created": created,
                    "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            if with_usage:
                body["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(body).encode() + b"\n\n")

        if kind == "tool":
            c = message["tool_calls"][0]
            chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": c["id"], "type": "function",
                 "function": {"name": "exec", "arguments": c["function"]["arguments"]}}]})
        else:
            chunk({"role": "assistant", "content": value})
        chunk({}, finish, with_usage=True)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


if __name__ == "__main__":
    port_file, LOG = sys.argv[1], sys.argv[2]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()
