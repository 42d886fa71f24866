"""Peers for bench_train: implicit 0.7.3 (BPR, ALS) and LightFM 1.17 (BPR) on crossrec's exported split.

Run by build/current/bench/bench_train with the bench-only virtual environment bench/.venv; by hand:

    bench/.venv/bin/python bench/peers/train_peers.py train --peer implicit-bpr --data DIR --epochs 5 --threads 2 --out OUT
    bench/.venv/bin/python bench/peers/train_peers.py eval  --peer implicit-bpr --data DIR --out OUT

DIR holds items.tsv (the catalogue written by `crossrec synth`) and export/{train,test}.tsv (`crossrec split
--export`, header `user<TAB>item`). Each command prints one JSON line on stdout.

train: loads export/train.tsv, builds the user x item CSR matrix (users in order of first appearance, items in
catalogue order, so every catalogue item is a column as it is a candidate in crossrec), fits one peer and
saves its scoring factors to OUT/PEER/{user,item}.npy. Peak memory is the process's (the bench runs this
under /usr/bin/time -v), so the loader streams the file into integer arrays and keeps only the id maps.
    implicit-bpr  BayesianPersonalizedRanking(factors, iterations=epochs, num_threads, random_state); the
                  library's defaults otherwise (SGD lr 0.01, reg 0.01); binary matrix.
    implicit-als  AlternatingLeastSquares(factors, iterations=epochs, regularization 0.01, CG 3 steps: the same
                  as crossrec's defaults). Confidences: implicit 0.7 uses the matrix entry (times its alpha)
                  as the confidence C_ui itself: its solve adds (C_ui - 1) y y^T and C_ui y (checked against a
                  direct solve). crossrec's confidence is 1 + alpha * value with alpha 40, so the matrix holds
                  1 + 40 * value and implicit's alpha is 1. value = number of training events of the pair
                  (export/train.tsv has no value column: each event counts 1, repeats add up).
                  implicit wants BLAS single-threaded during its fit (its own warning); its 2 threads are its
                  own solver threads, so the fit runs under threadpool_limits(1, "blas").
    lightfm-bpr   LightFM(no_components=factors, loss="bpr", random_state); defaults otherwise (Adagrad lr
                  0.05, no regularisation); fit_partial one epoch at a time with num_threads; binary matrix.
Epoch seconds: each epoch timed on its own (implicit's per-iteration callback; one fit_partial per epoch for
LightFM), reported with the whole fit's seconds (which also counts input conversion).

eval: recomputes the same id maps, scores every test user against every catalogue item with the saved
factors, excludes the user's training items, and computes recall@K and NDCG@K exactly as crossrec does
(docs/EVAL.md): Recall@K = hits@K / |GT|; NDCG@K = sum over hits of 1/log2(rank+1) over the ideal DCG of
min(|GT|, K) hits; ties pessimistic (equal-scored negatives rank before a positive, positives among
themselves by item index; with float scores ties are rare, but an untrained all-zero row is all ties).
Test users with no training event have no factors: they count as misses (crossrec counts a user its model
cannot represent the same way). Means are over all test users."""
import argparse
import array
import json
import math
import os
import sys
import time

import numpy as np


def read_pairs(path, user_map, item_map, add_users, add_items):
    """Streams a `user<TAB>item` TSV into two int32 arrays. Unknown ids get new indices when add_* is set,
    else -1. Columns are found by the header names user and item."""
    users, items = array.array("i"), array.array("i")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        cu, ci = header.index("user"), header.index("item")
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            u, i = fields[cu], fields[ci]
            ui = user_map.get(u)
            if ui is None:
                ui = -1
                if add_users:
                    ui = user_map[u] = len(user_map)
            ii = item_map.get(i)
            if ii is None:
                ii = -1
                if add_items:
                    ii = item_map[i] = len(item_map)
            users.append(ui)
            items.append(ii)
    return np.frombuffer(users, dtype=np.int32), np.frombuffer(items, dtype=np.int32)


def load(data_dir):
    """Id maps and training pairs. Items: the catalogue (items.tsv) in file order, then any item seen only
    in the exported files; users: in order of first appearance in train.tsv."""
    item_map = {}
    catalogue = os.path.join(data_dir, "items.tsv")
    if os.path.exists(catalogue):
        with open(catalogue, encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split("\t")
            ci = header.index("item")
            for line in f:
                item_map.setdefault(line.rstrip("\r\n").split("\t")[ci], len(item_map))
    user_map = {}
    tu, ti = read_pairs(os.path.join(data_dir, "export", "train.tsv"), user_map, item_map, True, True)
    return user_map, item_map, tu, ti


def train_matrix(tu, ti, n_users, n_items):
    """(n_users, n_items) CSR of event counts per (user, item); duplicates summed."""
    import scipy.sparse as sp

    m = sp.csr_matrix((np.ones(len(tu), dtype=np.float32), (tu, ti)), shape=(n_users, n_items))
    m.sum_duplicates()
    return m


def blas_info():
    try:
        import threadpoolctl

        return [
            {k: api.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for api in threadpoolctl.threadpool_info()
            if api.get("user_api") == "blas"
        ]
    except ImportError:
        return []


def fit_implicit(peer, counts, a):
    import implicit
    import threadpoolctl

    epoch_s = []
    cb = lambda it, seconds, *rest: epoch_s.append(seconds)  # noqa: E731
    if peer == "implicit-bpr":
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        m = BayesianPersonalizedRanking(factors=a.factors, iterations=a.epochs, num_threads=a.threads, random_state=a.seed)
        x = counts.copy()
        x.data[:] = 1.0
        t0 = time.perf_counter()
        m.fit(x, show_progress=False, callback=cb)
        fit_s = time.perf_counter() - t0
    else:
        from implicit.cpu.als import AlternatingLeastSquares

        x = counts.copy()
        x.data = 1.0 + a.alpha * x.data
        with threadpoolctl.threadpool_limits(1, "blas"):
            m = AlternatingLeastSquares(factors=a.factors, iterations=a.epochs, regularization=0.01, alpha=1.0,
                                        num_threads=a.threads, random_state=a.seed)
            t0 = time.perf_counter()
            m.fit(x, show_progress=False, callback=cb)
            fit_s = time.perf_counter() - t0
    # BPR's factors carry the item bias as their last column (users hold 1 there): the dot product is the score.
    return np.asarray(m.user_factors), np.asarray(m.item_factors), fit_s, epoch_s, implicit.__version__


def fit_lightfm(counts, a):
    import lightfm
    from lightfm import LightFM

    x = counts.tocoo()
    x.data[:] = 1.0
    m = LightFM(no_components=a.factors, loss="bpr", random_state=a.seed)
    epoch_s = []
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        t = time.perf_counter()
        m.fit_partial(x, epochs=1, num_threads=a.threads)
        epoch_s.append(time.perf_counter() - t)
    fit_s = time.perf_counter() - t0
    ub, ue = m.get_user_representations()
    ib, ie = m.get_item_representations()
    # score = ue . ie + ub + ib, as one dot product over [ue, 1, ub] and [ie, ib, 1]
    users = np.hstack([ue, np.ones((len(ue), 1), np.float32), ub[:, None]]).astype(np.float32)
    items = np.hstack([ie, ib[:, None], np.ones((len(ie), 1), np.float32)]).astype(np.float32)
    return users, items, fit_s, epoch_s, lightfm.__version__


def cmd_train(a):
    out = {"peer": a.peer, "ok": False}
    try:
        if a.peer.startswith("implicit"):
            import implicit  # noqa: F401
        else:
            import lightfm  # noqa: F401
    except Exception as e:  # any import failure means the peer is not installed usably
        out["reason"] = f"cannot import: {type(e).__name__}: {e}"
        print(json.dumps(out))
        return 0
    t_load = time.perf_counter()
    user_map, item_map, tu, ti = load(a.data)
    counts = train_matrix(tu, ti, len(user_map), len(item_map))
    del tu, ti
    load_s = time.perf_counter() - t_load
    if a.peer == "lightfm-bpr":
        users, items, fit_s, epoch_s, version = fit_lightfm(counts, a)
    else:
        users, items, fit_s, epoch_s, version = fit_implicit(a.peer, counts, a)
    d = os.path.join(a.out, a.peer)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "user.npy"), np.ascontiguousarray(users, dtype=np.float32))
    np.save(os.path.join(d, "item.npy"), np.ascontiguousarray(items, dtype=np.float32))
    out.update(ok=True, version=version, events=int(counts.sum()), nnz=int(counts.nnz), users=len(user_map),
               items=len(item_map), load_seconds=load_s, fit_seconds=fit_s, epoch_seconds=epoch_s, blas=blas_info())
    print(json.dumps(out))
    return 0


def ranks_of_positives(s, pos):
    """s: one user's scores (n_items) with excluded items at -inf; pos: sorted distinct truth items. Returns
    the 1-based pessimistic rank of each positive, or 0 when it is not ranked (excluded)."""
    sp = s[pos]
    r = np.zeros(len(pos), dtype=np.int64)
    for k, (p, v) in enumerate(zip(pos, sp)):
        if v == -np.inf:
            continue
        greater = int(np.count_nonzero(s > v))
        equal = int(np.count_nonzero(s == v)) - 1
        # equal-scored positives after p in index order do not precede it
        equal -= int(np.count_nonzero((sp == v) & (pos > p)))
        r[k] = 1 + greater + equal
    return r


def cmd_eval(a):
    import scipy.sparse as sp

    user_map, item_map, tu, ti = load(a.data)
    n_train_users, n_items = len(user_map), len(item_map)
    seen = sp.csr_matrix((np.ones(len(tu), dtype=np.int8), (tu, ti)), shape=(n_train_users, n_items))
    del tu, ti
    xu, xi = read_pairs(os.path.join(a.data, "export", "test.tsv"), user_map, item_map, True, False)
    d = os.path.join(a.out, a.peer)
    U, V = np.load(os.path.join(d, "user.npy")), np.load(os.path.join(d, "item.npy"))
    if U.shape[0] != n_train_users or V.shape[0] != n_items:
        raise SystemExit(f"{d}: factors ({U.shape[0]} users, {V.shape[0]} items) do not match the data "
                         f"({n_train_users}, {n_items})")
    # ground truth: distinct test items per test user (an item outside the catalogue is never ranked: -1)
    order = np.lexsort((xi, xu))
    xu, xi = xu[order], xi[order]
    keep = np.ones(len(xu), dtype=bool)
    keep[1:] = (xu[1:] != xu[:-1]) | (xi[1:] != xi[:-1])
    xu, xi = xu[keep], xi[keep]
    test_users, starts = np.unique(xu, return_index=True)
    ends = np.append(starts[1:], len(xu))
    K = a.k
    idcg = np.cumsum(1.0 / np.log2(np.arange(2, K + 2)))
    recall = np.zeros(len(test_users))
    ndcg = np.zeros(len(test_users))
    represented = test_users < n_train_users
    block = 1024
    rows = np.flatnonzero(represented)
    t0 = time.perf_counter()
    for b0 in range(0, len(rows), block):
        br = rows[b0:b0 + block]
        bu = test_users[br]
        S = U[bu] @ V.T  # (len(br), n_items)
        # exclude training items
        sub = seen[bu]
        S[np.repeat(np.arange(len(bu)), np.diff(sub.indptr)), sub.indices] = -np.inf
        # the common case, one ranked positive: its pessimistic rank in one pass over the block
        n_truth = ends[br] - starts[br]
        first = xi[starts[br]]
        single = (n_truth == 1) & (first >= 0)
        js = np.flatnonzero(single)
        if len(js):
            v = S[js, first[js]][:, None]
            rk = np.count_nonzero(S[js] >= v, axis=1)  # itself and every item scored at least as high
            rk[np.isneginf(v[:, 0])] = 0
            hit = (rk >= 1) & (rk <= K)
            recall[br[js]] = hit
            ndcg[br[js]] = np.where(hit, 1.0 / np.log2(np.maximum(rk, 1) + 1.0), 0.0) / idcg[0]
        for j in np.flatnonzero(~single):
            r = br[j]
            pos = xi[starts[r]:ends[r]]
            n_gt = len(pos)
            pos = pos[pos >= 0]
            rk = ranks_of_positives(S[j], pos) if len(pos) else np.zeros(0, dtype=np.int64)
            hit = (rk >= 1) & (rk <= K)
            recall[r] = hit.sum() / n_gt
            ndcg[r] = float(np.sum(1.0 / np.log2(rk[hit] + 1.0))) / idcg[min(n_gt, K) - 1]
    out = {"peer": a.peer, f"recall@{K}": float(recall.mean()) if len(recall) else 0.0,
           f"ndcg@{K}": float(ndcg.mean()) if len(ndcg) else 0.0, "users": int(len(test_users)),
           "unrepresented_users": int((~represented).sum()), "seconds": time.perf_counter() - t0}
    print(json.dumps(out))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["train", "eval"])
    ap.add_argument("--peer", required=True, choices=["implicit-bpr", "implicit-als", "lightfm-bpr"])
    ap.add_argument("--data", required=True, help="folder with items.tsv and export/{train,test}.tsv")
    ap.add_argument("--out", required=True, help="folder for the factors")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=40.0, help="ALS: confidence 1 + alpha * value")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    return cmd_train(a) if a.command == "train" else cmd_eval(a)


if __name__ == "__main__":
    sys.exit(main())
