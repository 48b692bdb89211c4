"""Chroma side of the vector search benchmark (agent-runtime/benches/vector_search.rs).

Loads the vectors the bench wrote into a persistent Chroma collection (HNSW, cosine, default
parameters), then answers the bench over a line protocol so its rounds interleave with the
embedded store's:

* after loading it prints one JSON line: {"version", "count", "load_seconds", "hnsw"};
* for each "round" line on stdin it runs every query once, one at a time, and prints
  {"latencies_ms": [...], "ids": [[...], ...]} (ids of the top k of each query, best first);
* it exits on "quit" or at the end of stdin.

The vector files are little-endian f32, row after row, `dimension` values a row; a point's id is
its row number. Run with the bench venv's python; it needs only chromadb (and its numpy).
"""

import argparse
import json
import sys
import time

import chromadb
import numpy as np
from chromadb.config import Settings


def read_rows(path, dimension):
    rows = np.fromfile(path, dtype="<f4")
    if rows.size % dimension:
        sys.exit(f"{path}: {rows.size} floats is not a whole number of {dimension}-d rows")
    return rows.reshape(-1, dimension)


def load(collection, vectors, batch):
    started = time.perf_counter()
    for start in range(0, len(vectors), batch):
        rows = vectors[start : start + batch]
        ids = [str(i) for i in range(start, start + len(rows))]
        collection.add(ids=ids, embeddings=rows)
    return time.perf_counter() - started


def run_round(collection, queries, k):
    latencies, ids = [], []
    for query in queries:
        started = time.perf_counter()
        result = collection.query(query_embeddings=[query], n_results=k, include=[])
        latencies.append((time.perf_counter() - started) * 1000.0)
        ids.append([int(i) for i in result["ids"][0]])
    return {"latencies_ms": latencies, "ids": ids}


def hnsw_settings(collection):
    """The HNSW parameters Chroma chose, as it reports them."""
    try:
        hnsw = collection.configuration.get("hnsw") or {}
        return {key: value for key, value in hnsw.items() if isinstance(value, (int, float, str))}
    except Exception as error:  # the configuration API changes between Chroma releases
        return {"unknown": str(error)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", required=True, help="file of the points to load")
    parser.add_argument("--queries", required=True, help="file of the query vectors")
    parser.add_argument("--dimension", type=int, required=True)
    parser.add_argument("--k", type=int, default=10, help="hits per query")
    parser.add_argument("--batch", type=int, default=1000, help="points per add call")
    parser.add_argument("--dir", required=True, help="empty directory for the persistent store")
    args = parser.parse_args()

    vectors = read_rows(args.vectors, args.dimension)
    queries = read_rows(args.queries, args.dimension)
    client = chromadb.PersistentClient(path=args.dir, settings=Settings(anonymized_telemetry=False))
    # No embedding function: the bench gives the vectors, and the default one would load a model.
    collection = client.create_collection(
        "bench", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    load_seconds = load(collection, vectors, args.batch)
    ready = {
        "version": chromadb.__version__,
        "count": collection.count(),
        "load_seconds": load_seconds,
        "hnsw": hnsw_settings(collection),
    }
    print(json.dumps(ready), flush=True)

    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "round":
            sys.exit(f"unknown command {command!r}")
        print(json.dumps(run_round(collection, queries, args.k)), flush=True)


if __name__ == "__main__":
    main()
