"""Peer for bench_import: pandas read_csv(sep='\t') of an interactions file, then factorize user and item.
Prints one line: seconds peak_rss_bytes rows. Run with Debian's python3 (python3-pandas)."""
import resource
import sys
import time

import pandas as pd

path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_csv(path, sep="\t")
users, _ = pd.factorize(df["user"])
items, _ = pd.factorize(df["item"])
seconds = time.perf_counter() - t0
print(f"{seconds:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024} {len(df)}")
