#!/usr/bin/env python3
"""Load generator for fake_openai.py: C keep-alive connections, each sending
one chat completion after another for D seconds. Prints requests/s, status
counts, latency percentiles and, with --pid, the CPU the server used.

  load.py --port P [--connections 256] [--duration 10] [--pid PID] [--schema]
"""

import argparse
import asyncio
import json
import os
import time

BODY_PLAIN = {"model": "gpt-4o-mini",
              "messages": [{"role": "developer", "content": "Summarise the event."},
                           {"role": "user", "content": "Order 1234 from Laura, 3 items, 59.90 EUR."}]}
BODY_SCHEMA = dict(BODY_PLAIN, response_format={
    "type": "json_schema",
    "json_schema": {"name": "summary", "strict": True, "schema": {
        "type": "object", "additionalProperties": False,
        "required": ["summary", "score", "hot"],
        "properties": {"summary": {"type": "string"},
                       "score": {"type": "integer", "minimum": 0, "maximum": 100},
                       "hot": {"type": "boolean"}}}}})


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


class Client(asyncio.Protocol):
    def __init__(self, request, stats, deadline, done):
        self.request = request
        self.stats = stats
        self.deadline = deadline
        self.done = done
        self.buf = bytearray()
        self.t0 = 0.0

    def connection_made(self, transport):
        self.transport = transport
        self.fire()

    def fire(self):
        if time.monotonic() >= self.deadline:
            self.transport.close()
            return
        self.t0 = time.monotonic()
        self.stats["n"] += 1
        self.transport.write(self.request(self.stats["n"]))

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            i = head.find(b"content-length: ")
            clen = int(head[i + 16:head.index(b"\r\n", i)]) if i >= 0 else 0
            if len(self.buf) < end + 4 + clen:
                return
            status = head[9:12].decode()
            del self.buf[:end + 4 + clen]
            self.stats["status"][status] = self.stats["status"].get(status, 0) + 1
            self.stats["lat"].append(time.monotonic() - self.t0)
            self.fire()

    def connection_lost(self, exc):
        if not self.done.done():
            self.stats["open"] -= 1
            if self.stats["open"] == 0:
                self.done.set_result(None)


async def run(args):
    template = json.dumps(BODY_SCHEMA if args.schema else BODY_PLAIN)

    def request(n):  # every event differs, as in the benchmark
        body = template.replace("Order 1234", "Order %d" % n).encode()
        return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                b"authorization: Bearer sk-load\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(body)) + body
    loop = asyncio.get_running_loop()
    stats = {"status": {}, "lat": [], "open": args.connections, "n": 0}
    done = loop.create_future()
    cpu0 = cpu_seconds(args.pid) if args.pid else None
    me0 = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + args.duration
    for _ in range(args.connections):
        await loop.create_connection(lambda: Client(request, stats, deadline, done),
                                     args.host, args.port)
    await done
    elapsed = time.monotonic() - t0
    n = sum(stats["status"].values())
    lat = sorted(stats["lat"])
    out = {"requests": n, "seconds": round(elapsed, 2), "rps": round(n / elapsed, 1),
           "status": stats["status"],
           "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
           "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
           "loadgen_cpu_s": round(time.process_time() - me0, 2)}
    if args.pid:
        cpu = cpu_seconds(args.pid) - cpu0
        out["server_cpu_s"] = round(cpu, 2)
        out["server_cpu_pct"] = round(100 * cpu / elapsed, 1)
        out["server_us_per_req"] = round(1e6 * cpu / n, 1) if n else None
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--pid", type=int)
    p.add_argument("--schema", action="store_true")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
