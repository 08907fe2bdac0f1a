#!/usr/bin/python3
"""The airlock example agent.

It runs as the unprivileged `agent` user inside the sandbox airlock renders
from the recipe's [agent] section. It reads its model (a GGUF file placed
read-only by [[models]]), writes what it found into its one writable
directory, and tries to reach one destination its egress allow-list allows
and two it does not. A real agent would load the model and serve requests;
this one shows what the sandbox lets it do.

Configuration comes from the unit's environment:
  AIRLOCK_MODEL      the model file
  AIRLOCK_STATE      the writable directory
  AIRLOCK_ALLOWED    HOST:PORT the allow-list permits
  AIRLOCK_FORBIDDEN  HOST:PORT ... it does not
"""

import errno
import hashlib
import os
import socket
import struct
import sys
import time

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_exact(f, n):
    data = f.read(n)
    if len(data) != n:
        raise ValueError("the model file is truncated")
    return data


def read_string(f):
    (length,) = struct.unpack("<Q", read_exact(f, 8))
    if length > 1 << 20:
        raise ValueError("a GGUF string is implausibly long")
    return read_exact(f, length).decode("utf-8", "replace")


def read_value(f, kind):
    if kind in GGUF_SCALARS:
        fmt = GGUF_SCALARS[kind]
        return struct.unpack(fmt, read_exact(f, struct.calcsize(fmt)))[0]
    if kind == 8:
        return read_string(f)
    if kind == 9:
        (inner,) = struct.unpack("<I", read_exact(f, 4))
        (count,) = struct.unpack("<Q", read_exact(f, 8))
        if count > 1 << 20:
            raise ValueError("a GGUF array is implausibly long")
        return [read_value(f, inner) for _ in range(count)]
    raise ValueError("unknown GGUF value type %d" % kind)


def read_model(path):
    """The GGUF header's facts and the file's sha256 (read in pieces)."""
    with open(path, "rb") as f:
        if read_exact(f, 4) != b"GGUF":
            raise ValueError("not a GGUF file")
        version, tensors, count = struct.unpack("<IQQ", read_exact(f, 20))
        metadata = {}
        for _ in range(min(count, 4096)):
            key = read_string(f)
            (kind,) = struct.unpack("<I", read_exact(f, 4))
            metadata[key] = read_value(f, kind)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "gguf_version": version,
        "tensors": tensors,
        "architecture": metadata.get("general.architecture", ""),
        "name": metadata.get("general.name", ""),
        "sha256": digest.hexdigest(),
    }


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def attempt(host, port, message, patient):
    """Connects to host:port; the outcome as text. Retries while the network
    is not up yet when `patient`."""
    deadline = time.monotonic() + (20 if patient else 0)
    while True:
        try:
            with socket.create_connection((host, port), timeout=4) as conn:
                conn.sendall(message)
            return "connected"
        except socket.timeout:
            return "timed out"
        except OSError as e:
            retry = e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)
            if retry and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            return errno.errorcode.get(e.errno, str(e.errno)) + " (" + e.strerror + ")"


def json_string(text):
    out = ['"']
    for c in str(text):
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def main():
    state = os.environ["AIRLOCK_STATE"]
    model_path = os.environ["AIRLOCK_MODEL"]
    model = read_model(model_path)
    message = ("airlock-agent model-sha256=%s\n" % model["sha256"]).encode()
    connections = [(os.environ["AIRLOCK_ALLOWED"], True)]
    connections += [(t, False) for t in os.environ.get("AIRLOCK_FORBIDDEN", "").split()]
    results = []
    for target, allowed in connections:
        host, port = endpoint(target)
        results.append((target, allowed, attempt(host, port, message, allowed)))

    fields = ",".join("%s:%s" % (json_string(k), json_string(v) if isinstance(v, str) else v)
                      for k, v in sorted(model.items()))
    lines = ",".join('{"to":%s,"allowed":%s,"outcome":%s}'
                     % (json_string(t), "true" if a else "false", json_string(o))
                     for t, a, o in results)
    text = '{"model":{"path":%s,%s},"connections":[%s]}\n' % (json_string(model_path), fields, lines)
    partial = os.path.join(state, "result.json.partial")
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, os.path.join(state, "result.json"))

    breached = [t for t, a, o in results if not a and o == "connected"]
    summary = "; ".join("%s %s: %s" % ("allowed" if a else "forbidden", t, o) for t, a, o in results)
    print("airlock-agent: done: model %s (%s, %d tensors, sha256 %s); %s"
          % (model_path, model["architecture"], model["tensors"], model["sha256"], summary),
          flush=True)
    if breached:
        print("airlock-agent: a forbidden destination was reachable: %s" % ", ".join(breached),
              file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
