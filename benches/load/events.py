"""Event ingest under load: POST /events batches from several connections for SECONDS.

    python3 benches/load/events.py ADDR QUERIES_TSV SECONDS [CONNECTIONS] [BATCH]

First searches 200 queries to get impressions, then posts click events (unique ids, each
naming a product its impression showed) as fast as the server acknowledges them. Prints
acknowledged events per second and the batch latency. No third-party packages.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def main():
    addr, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    host, port = addr.split(":")
    texts = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1]:
                texts.append(parts[1])
    conn = http.client.HTTPConnection(host, int(port))
    shown = []
    for text in texts[:200]:
        conn.request("GET", "/search?" + urllib.parse.urlencode({"q": text, "k": "10", "facets": "false"}))
        body = json.loads(conn.getresponse().read())
        shown += [(body["impression_id"], hit["id"]) for hit in body["results"]]
    if not shown:
        sys.exit("no impressions: is the server started with --events?")
    acknowledged, failed, millis = [0], [0], []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def post(worker):
        connection = http.client.HTTPConnection(host, int(port))
        n = 0
        while time.perf_counter() < deadline:
            events = []
            for _ in range(batch):
                impression, product = shown[(worker * 7919 + n) % len(shown)]
                events.append({"event_id": f"bench-{worker}-{n}", "impression_id": impression,
                               "product_id": product, "type": "click"})
                n += 1
            started = time.perf_counter()
            connection.request("POST", "/events", json.dumps(events), {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            with lock:
                millis.append((time.perf_counter() - started) * 1e3)
                if response.status == 200:
                    acknowledged[0] += batch
                else:
                    failed[0] += batch

    began = time.perf_counter()
    workers = [threading.Thread(target=post, args=(w,)) for w in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    millis.sort()
    at = lambda q: millis[round((len(millis) - 1) * q)]
    print(f"ingest: {acknowledged[0] / elapsed:.0f} events/s acknowledged ({acknowledged[0]} in {elapsed:.1f}s, "
          f"batches of {batch} over {connections} connections), {failed[0]} not acknowledged, "
          f"batch p50 {at(0.5):.1f} ms, p99 {at(0.99):.1f} ms")


if __name__ == "__main__":
    main()
