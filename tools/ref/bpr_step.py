#!/usr/bin/env python3
"""bpr_step.py — NumPy reference for one BPR-MF SGD step; writes tests/golden/bpr_step.txt to stdout.

Usage (once, by hand; the output is checked in):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy
    /tmp/refenv/bin/python tools/ref/bpr_step.py > tests/golden/bpr_step.txt

Model: score(u, i) = <P[u], Q[i]>. For the sample (u, i, j), x = <P[u], Q[i] - Q[j]> and
    L = -log sigmoid(x) + (reg / 2) (|P[u]|^2 + |Q[i]|^2 + |Q[j]|^2)
One plain SGD step with learning rate lr updates the three rows from gradients taken at the old values:
    P[u] -= lr (-(1 - s)(Q[i] - Q[j]) + reg P[u])
    Q[i] -= lr (-(1 - s) P[u] + reg Q[i])
    Q[j] -= lr ( (1 - s) P[u] + reg Q[j])        with s = sigmoid(x)

The factors are written here as literals, rounded to float32 first (crossrec stores float32) and then
computed in float64. The file lists the float32 starting factors, the sample, the loss before the step
(-log sigmoid(x), without the L2 term, which is what crossrec reports) and every factor after the step,
all with %.9g, which round-trips float32. tests/test_bpr.c (bpr_golden_step) reads the starting factors from
the file, runs cr_bpr_grad + cr_opt_update (sgd) on them and compares within 1e-6.
"""
import numpy as np

LR = 0.1
REG = 0.01
U, I, J = 1, 2, 0

# 3 users x 4 dims, 4 items x 4 dims
P0 = np.array([
    [0.12, -0.31, 0.05, 0.44],
    [-0.27, 0.18, 0.36, -0.09],
    [0.08, 0.22, -0.15, 0.30],
], dtype=np.float32)
Q0 = np.array([
    [0.21, -0.14, 0.33, 0.07],
    [-0.05, 0.29, -0.22, 0.16],
    [-0.38, 0.11, 0.41, -0.26],
    [0.17, 0.02, -0.09, 0.35],
], dtype=np.float32)


def fmt(v):
    return " ".join("%.9g" % float(x) for x in v)


def main():
    P = P0.astype(np.float64)
    Q = Q0.astype(np.float64)
    pu, qi, qj = P[U].copy(), Q[I].copy(), Q[J].copy()
    x = float(pu @ (qi - qj))
    s = 1.0 / (1.0 + np.exp(-x))
    loss = float(np.logaddexp(0.0, -x))     # -log sigmoid(x)
    c = 1.0 - s
    gu = -c * (qi - qj) + REG * pu
    gi = -c * pu + REG * qi
    gj = c * pu + REG * qj
    P[U] = pu - LR * gu
    Q[I] = qi - LR * gi
    Q[J] = qj - LR * gj

    print("# bpr_step.txt — golden BPR-MF SGD step, written by tools/ref/bpr_step.py (NumPy %s, float64 arithmetic"
          % np.__version__)
    print("# on float32 starting factors): /tmp/refenv/bin/python tools/ref/bpr_step.py > tests/golden/bpr_step.txt")
    print("# Lines: lr, reg, sample u i j, dims (users items dim), init_user/init_item rows, loss before the step")
    print("# (-log sigmoid(x), no L2), then user/item rows after one SGD step. Read by tests/test_bpr.c.")
    print("lr %.9g" % LR)
    print("reg %.9g" % REG)
    print("sample %d %d %d" % (U, I, J))
    print("dims %d %d %d" % (P0.shape[0], Q0.shape[0], P0.shape[1]))
    for r in range(P0.shape[0]):
        print("init_user %d %s" % (r, fmt(P0[r])))
    for r in range(Q0.shape[0]):
        print("init_item %d %s" % (r, fmt(Q0[r])))
    print("loss %.9g" % loss)
    for r in range(P.shape[0]):
        print("user %d %s" % (r, fmt(P[r])))
    for r in range(Q.shape[0]):
        print("item %d %s" % (r, fmt(Q[r])))


if __name__ == "__main__":
    main()
