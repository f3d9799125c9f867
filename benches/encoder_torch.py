"""sentence-transformers on PyTorch CPU, measured like `shelf model bench`: the same model
files, the same product titles in the same order, batch size 32, then single short queries.

    /tmp/st/bin/python benches/encoder_torch.py models/all-MiniLM-L6-v2 CATALOG.jsonl 2000 QUERIES.tsv

(see tests/fixtures/encoder/make_reference.py for the environment).
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, catalog, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(torch.get_num_threads())
model = SentenceTransformer(model_dir, device="cpu")
titles = [json.loads(line)["title"] for _, line in zip(range(limit), open(catalog))]
model.encode(titles[:64], batch_size=32)  # warm-up
started = time.perf_counter()
model.encode(titles, batch_size=32, normalize_embeddings=True)
per_second = len(titles) / (time.perf_counter() - started)
result = {"texts": len(titles), "texts_per_second": per_second, "threads": torch.get_num_threads()}
if len(sys.argv) > 4:
    queries = [line.split("\t")[1].strip() for line in open(sys.argv[4])][:500]
    millis = []
    for query in queries:
        started = time.perf_counter()
        model.encode([query], normalize_embeddings=True)
        millis.append((time.perf_counter() - started) * 1e3)
    millis.sort()
    result["query_p50_ms"] = millis[len(millis) // 2]
    result["query_p95_ms"] = millis[int(len(millis) * 0.95)]
print(json.dumps(result))
