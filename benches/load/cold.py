"""Cold-cache latency: every query sent once, one at a time, over one keep-alive connection.

    python3 benches/load/cold.py ADDR QUERIES_TSV [RANKER]

Prints requests, errors, p50, p99 and max in milliseconds. No third-party packages.
"""
import http.client
import os
import sys
import time
import urllib.parse


def main():
    addr, path = sys.argv[1], sys.argv[2]
    ranker = sys.argv[3] if len(sys.argv) > 3 else ""
    host, port = addr.split(":")
    queries = []
    seen = set()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1] and parts[1] not in seen:
                seen.add(parts[1])
                queries.append(parts[1])
    connection = http.client.HTTPConnection(host, int(port))
    millis, errors = [], 0
    for text in queries:
        params = {"q": text, "k": "10"}
        if ranker:
            params["ranker"] = ranker
        if os.environ.get("EXPLORE"):
            params["explore"] = os.environ["EXPLORE"]
        started = time.perf_counter()
        connection.request("GET", "/search?" + urllib.parse.urlencode(params))
        response = connection.getresponse()
        response.read()
        millis.append((time.perf_counter() - started) * 1e3)
        errors += response.status != 200
    millis.sort()
    at = lambda q: millis[round((len(millis) - 1) * q)]
    print(f"cold: requests {len(millis)}, errors {errors}, p50 {at(0.5):.2f} ms, p99 {at(0.99):.2f} ms, max {millis[-1]:.2f} ms")


if __name__ == "__main__":
    main()
