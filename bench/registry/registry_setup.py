#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""registry_setup.py - prepares and loads a running `cairn registry serve`
for run.sh, through the Confluent REST API only (http.client, keep-alive).
Every step checks the status and the JSON it gets back, so a benchmark never
starts against a server that answered wrongly.

usage:
  registry_setup.py get URL OUTDIR
      registers one schema under subject bench-get; writes the exact body of
      GET /schemas/ids/{id} to OUTDIR/www/schemas/ids/{id} (nginx's copy) and
      the register body to OUTDIR/lookup.json; prints id= path= bytes=
  registry_setup.py compat URL SUBJECT BODYFILE
      sets BACKWARD_TRANSITIVE on SUBJECT, registers 20 versions of a record
      (30 fields, then one optional field with a default more per version)
      and writes to BODYFILE the 50-field candidate, checked once to be
      compatible; prints versions= fields=
  registry_setup.py load URL COUNT CONNECTIONS
      registers COUNT distinct 10-field records, each under its own subject,
      over CONNECTIONS keep-alive connections; checks every answer is 200 and
      every id distinct; prints registered= distinct_ids= seconds= rps=
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

CT = "application/vnd.schemaregistry.v1+json"


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, method, path, body=None, want=200):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": CT} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != want:
            raise RuntimeError("%s %s: HTTP %d (wanted %d): %s"
                               % (method, path, resp.status, want, raw[:300].decode(errors="replace")))
        return resp, raw

    def json(self, method, path, body=None):
        _, raw = self.call(method, path, body)
        return json.loads(raw)


def schema_body(schema):
    return {"schema": json.dumps(schema, separators=(",", ":"))}


def cmd_get(url, outdir):
    c = Client(url)
    schema = {"type": "record", "name": "Payment", "namespace": "bench.get",
              "fields": [{"name": "id", "type": "string"},
                         {"name": "amount", "type": "double"},
                         {"name": "currency", "type": {"type": "enum", "name": "Currency",
                                                       "symbols": ["EUR", "USD", "GBP"]}},
                         {"name": "note", "type": ["null", "string"], "default": None}]}
    body = schema_body(schema)
    reg = c.json("POST", "/subjects/bench-get/versions", body)
    sid = int(reg["id"])
    _, raw = c.call("GET", "/schemas/ids/%d" % sid)
    got = json.loads(raw)
    if "schema" not in got:
        raise RuntimeError("GET /schemas/ids/%d has no schema: %r" % (sid, raw[:200]))
    path = os.path.join(outdir, "www", "schemas", "ids")
    os.makedirs(path, exist_ok=True)
    target = os.path.join(path, str(sid))
    with open(target, "wb") as f:
        f.write(raw)
    with open(os.path.join(outdir, "lookup.json"), "w") as f:
        json.dump(body, f)
    # The look-up must find what was registered, or case 2 measures 404s.
    found = c.json("POST", "/subjects/bench-get", body)
    if int(found["id"]) != sid:
        raise RuntimeError("look-up returned id %r, registered %d" % (found.get("id"), sid))
    print("id=%d path=/schemas/ids/%d bytes=%d" % (sid, sid, len(raw)))


FIELD_TYPES = ["long", "string", "int", "double", "boolean", "bytes",
               {"type": "array", "items": "string"}, {"type": "map", "values": "long"},
               ["null", "string"], "float"]


def compat_record(nfields_opt):
    fields = []
    for i in range(30):
        t = FIELD_TYPES[i % len(FIELD_TYPES)]
        f = {"name": "f%02d" % i, "type": t}
        if isinstance(t, list):
            f["default"] = None
        fields.append(f)
    for k in range(1, nfields_opt + 1):
        fields.append({"name": "opt%02d" % k, "type": ["null", "string"], "default": None})
    return {"type": "record", "name": "Order", "namespace": "bench.compat", "fields": fields}


def cmd_compat(url, subject, bodyfile):
    c = Client(url)
    q = urllib.parse.quote(subject, safe="")
    cfg = c.json("PUT", "/config/%s" % q, {"compatibility": "BACKWARD_TRANSITIVE"})
    if cfg.get("compatibility") != "BACKWARD_TRANSITIVE":
        raise RuntimeError("PUT /config answered %r" % cfg)
    ids = set()
    for v in range(20):  # versions 1..20: 30..49 fields
        r = c.json("POST", "/subjects/%s/versions" % q, schema_body(compat_record(v)))
        ids.add(int(r["id"]))
    versions = c.json("GET", "/subjects/%s/versions" % q)
    if len(ids) != 20 or len(versions) != 20:
        raise RuntimeError("expected 20 versions, got ids=%d versions=%r" % (len(ids), versions))
    candidate = compat_record(20)  # 50 fields, new: one more optional field
    body = schema_body(candidate)
    res = c.json("POST", "/compatibility/subjects/%s/versions" % q, body)
    if res.get("is_compatible") is not True:
        raise RuntimeError("candidate is not compatible: %r" % res)
    with open(bodyfile, "w") as f:
        json.dump(body, f)
    print("versions=%d fields=%d level=BACKWARD_TRANSITIVE" % (len(versions),
                                                               len(candidate["fields"])))


def load_worker(url, indices, ids, errors):
    try:
        c = Client(url)
        for i in indices:
            schema = {"type": "record", "name": "Rss%06d" % i, "namespace": "bench.rss",
                      "fields": [{"name": "f%d_%06d" % (k, i), "type": FIELD_TYPES[k]}
                                 for k in range(10)]}
            for f in schema["fields"]:
                if isinstance(f["type"], list):
                    f["default"] = None
            r = c.json("POST", "/subjects/rss-%06d/versions" % i, schema_body(schema))
            ids.append(int(r["id"]))
    except Exception as e:  # reported by the main thread
        errors.append(str(e))


def cmd_load(url, count, conns):
    ids, errors = [], []
    workers = [threading.Thread(target=load_worker,
                                args=(url, range(w, count, conns), ids, errors))
               for w in range(conns)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    secs = time.perf_counter() - t0
    if errors:
        raise RuntimeError("%d loader connections failed; first: %s" % (len(errors), errors[0]))
    distinct = len(set(ids))
    if len(ids) != count or distinct != count:
        raise RuntimeError("registered %d, distinct ids %d, wanted %d" % (len(ids), distinct, count))
    print("registered=%d distinct_ids=%d seconds=%.3f rps=%.1f" % (len(ids), distinct, secs,
                                                                   count / secs))


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "get":
            cmd_get(argv[2], argv[3])
        elif len(argv) == 5 and argv[1] == "compat":
            cmd_compat(argv[2], argv[3], argv[4])
        elif len(argv) == 5 and argv[1] == "load":
            cmd_load(argv[2], int(argv[3]), int(argv[4]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (RuntimeError, OSError, ValueError, KeyError, http.client.HTTPException) as e:
        print("registry_setup.py %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
