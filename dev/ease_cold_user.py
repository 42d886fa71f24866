"""ease_cold_user.py — an independent check of what the Amazon arts+office cold-user protocol allows: EASE
(Steck 2019, a closed-form item-item model, strong on implicit data) on the same training set as crossrec's
split (train users' events + the source-domain events of validation/test users), ranked over all items of the
target domain, NDCG@10 / Recall@10 on the validation users (binary relevance, distinct items).

Not part of the product or of CI: a dev experiment (numpy + scipy in any virtual environment).
    python3 dev/ease_cold_user.py [office|arts] [min item count, 5] [lambdas, 100,300,1000]
Items with fewer training events than the minimum are left out of EASE's Gram matrix (they score -inf), which
keeps the dense inverse small; ties in the top 10 are broken by item order, not pessimistically.
"""
import sys

import numpy as np
import scipy.sparse as sp

DATA = "../shared/data/amazon-art-office/"


def rows_of(path):
    with open(path) as f:
        next(f)
        for line in f:
            yield line.rstrip("\n").split("\t")


def load(target):
    items, dom = {}, []
    for f in rows_of(DATA + "items.tsv"):
        items[f[0]] = len(dom)
        dom.append(f[1])
    dom = np.array(dom)
    part = {u: s for u, s in rows_of(DATA + "users.tsv")}
    users, ev = {}, []
    for u, i, _, _ in rows_of(DATA + "interactions.tsv"):
        ev.append((users.setdefault(u, len(users)), items[i]))
    ev = np.array(ev)
    user_part = np.array([part.get(u, "train") for u in users])[ev[:, 0]]
    in_target = dom[ev[:, 1]] == target
    return ev, len(users), len(dom), dom, user_part, in_target


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "office"
    min_count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    lambdas = [float(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "100,300,1000").split(",")]
    ev, n_users, n_items, dom, user_part, in_target = load(target)
    train = ev[(user_part == "train") | ~in_target]
    X = sp.csr_matrix((np.ones(len(train), np.float32), (train[:, 0], train[:, 1])), shape=(n_users, n_items))
    X.data[:] = 1
    truth = {}
    for u, i in ev[(user_part == "valid") & in_target]:
        truth.setdefault(u, set()).add(i)
    cand = np.where(dom == target)[0]
    pop = np.asarray(X.sum(0)).ravel()
    keep = np.where(pop >= min_count)[0]
    Xk = X[:, keep].tocsc()
    G = (Xk.T @ Xk).toarray()
    disc = 1 / np.log2(np.arange(2, 12))
    users = np.array(sorted(truth))

    def evaluate(score):
        ndcg, recall = [], []
        for b in range(0, len(users), 256):
            ub = users[b:b + 256]
            S = score(ub)[:, cand]
            for r, u in enumerate(ub):
                top = np.argsort(-S[r], kind="stable")[:10]
                rel = np.array([cand[t] in truth[u] for t in top], float)
                ndcg.append((rel * disc).sum() / disc[:min(len(truth[u]), 10)].sum())
                recall.append(rel.sum() / len(truth[u]))
        return np.mean(ndcg), np.mean(recall)

    print("pop        NDCG@10 %.4f  Recall@10 %.4f" % evaluate(lambda u: np.tile(pop, (len(u), 1))))
    for lam in lambdas:
        P = np.linalg.inv(G + lam * np.eye(len(keep), dtype=G.dtype))
        B = -P / np.diag(P)
        np.fill_diagonal(B, 0)

        def score(u):
            s = np.full((len(u), n_items), -np.inf)
            s[:, keep] = Xk[u] @ B
            return s
        print("EASE %5g NDCG@10 %.4f  Recall@10 %.4f" % ((lam,) + evaluate(score)), flush=True)


if __name__ == "__main__":
    main()
