#!/usr/bin/env python3
"""A small OTLP/HTTP trace receiver for the tests, on the official OpenTelemetry proto package
(protobuf and JSON bodies).

POST /v1/traces   accepts application/x-protobuf (optionally gzip) or application/json
GET  /spans       returns every span received so far as a JSON list (flattened)
Prints "LISTENING <port>" on stdout once bound (bind port 0 to get a free one).
Needs opentelemetry-proto (tests/python/peers-requirements.txt, installed by scripts/install-peers.sh).
"""
import base64, gzip, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

SPANS, LOCK = [], threading.Lock()

def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None

ID_FIELDS = ("traceId", "spanId", "parentSpanId")

def ids_to_base64(value):
    if isinstance(value, list):
        return [ids_to_base64(v) for v in value]
    if isinstance(value, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ID_FIELDS and isinstance(v, str) else ids_to_base64(v))
                for k, v in value.items()}
    return value

def flatten_proto(req, encoding):
    out = []
    for rs in req.resource_spans:
        res = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "name": s.name, "kind": s.kind, "scope": ss.scope.name,
                    "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "status_code": s.status.code, "resource": res,
                    "start_ns": s.start_time_unix_nano, "end_ns": s.end_time_unix_nano,
                    "attributes": {kv.key: any_value(kv.value) for kv in s.attributes},
                    "events": [e.name for e in s.events], "encoding": encoding,
                })
    return out

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/v1/traces":
            return self.send_error(404)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        ctype = self.headers.get("Content-Type", "")
        req = ExportTraceServiceRequest()
        if ctype.startswith("application/json"):
            # OTLP/JSON writes ids as hex, where proto3's JSON mapping expects base64.
            json_format.ParseDict(ids_to_base64(json.loads(body)), req, ignore_unknown_fields=True)
            spans = flatten_proto(req, "json")
            reply, rtype = b"{}", "application/json"
        else:
            req.ParseFromString(body)
            spans = flatten_proto(req, "protobuf")
            reply, rtype = ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
        with LOCK:
            SPANS.extend(spans)
        self.send_response(200)
        self.send_header("Content-Type", rtype)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):
        if self.path != "/spans":
            return self.send_error(404)
        with LOCK:
            data = json.dumps(SPANS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()
