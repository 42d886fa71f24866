#!/usr/bin/env python3
"""cmf_step.py — NumPy reference for collective MF (cmf) training steps; writes tests/golden/cmf_step.txt to stdout.

Usage (once, by hand; the output is checked in):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy
    /tmp/refenv/bin/python tools/ref/cmf_step.py > tests/golden/cmf_step.txt

Model (src/train/fit_cmf.c, fitted by src/train/fit_bpr.c; scored by src/models/mf.c): one user matrix P shared
by every domain, one item matrix Q whose rows belong to one domain each, score(u, i) = <P[u], Q[i]>. Domain d has
the loss weight w_d = 1 for the target T and SOURCE_WEIGHT for the others. A sample (u, i, j) is a positive i of
domain d and a negative j of the same domain; with x = <P[u], Q[i] - Q[j]> its objective is
    L = w_d * softplus(-x) + (REG / 2) (|P[u]|^2 + |Q[i]|^2 + |Q[j]|^2)          (softplus(-x) = -log sigmoid(x))
(the weight scales the data term only). Its gradient, from the parameters before the sample, with s = sigmoid(-x):
    dL/dP[u] = -w_d s (Q[i] - Q[j]) + REG P[u]
    dL/dQ[i] = -w_d s P[u]          + REG Q[i]
    dL/dQ[j] =  w_d s P[u]          + REG Q[j]
derived here by hand and checked against central differences of L. Every sample is one optimizer step that
updates its three rows only ("lazy"), with the REG term entering as the optimizer's weight decay (g = weighted
data gradient + REG * row):
    adagrad:  v += g^2;  x -= lr g / (sqrt(v) + eps)
    adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
              x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
with t the sample's 1-based index in the run (the optimizer's global step, shared by all rows: a row's moments
are only touched by its own samples, but its bias correction uses the global t).

The file has: the settings, the item domains, the starting factors (float32 literals, computed here in float64),
the samples in order; then a run with adagrad (cmf's default optimizer): for each sample its unweighted loss
softplus(-x), its weight and its three weighted data gradients (w_d times the data term's, without the REG
part: what crossrec's step hands to the optimizer), then the factors after all samples and every user's scores
for the target items; then the same samples with adam from the same start: the factors after all samples.
Numbers are %.9g. A tensor is a line `name rows cols` followed by its rows; a scalar is `name value`.
tests/test_cmf.c (cmf_golden_steps) runs cr_mf_pair_step (the step of fit_bpr.c's loop) on these samples and
cr_model_score on a cmf model of the result, and compares within 1e-5 relative (plus 1e-6 absolute; 1e-7 for
the gradients).
"""
import numpy as np

DIM = 4
T = 1                   # target domain
SOURCE_WEIGHT = 0.5
REG = 0.01
LR_ADAGRAD = 0.037       # not on the 0.01 grid of the literals: no entry is stepped onto 0
LR_ADAM = 0.023
EPS = 1e-8
BETA1, BETA2 = 0.9, 0.999
ITEM_DOMAIN = [0, 0, 0, 1, 1, 1]     # items 0-2 source, 3-5 target

P0 = np.array([                 # 3 users x 4; user 2 has source samples only: cold in the target
    [0.12, -0.31, 0.05, 0.44],
    [-0.27, 0.18, 0.36, -0.09],
    [0.08, 0.22, -0.15, 0.30],
], dtype=np.float32)
Q0 = np.array([                 # 6 items x 4
    [0.21, -0.14, 0.33, 0.07],
    [-0.05, 0.29, -0.22, 0.16],
    [-0.38, 0.11, 0.41, -0.26],
    [0.17, 0.02, -0.09, 0.35],
    [0.26, -0.33, 0.12, -0.18],
    [-0.11, 0.24, 0.07, 0.31],
], dtype=np.float32)
# (u, i, j): user 0 in both domains (its shared row moves under both weights), user 2 in the source only,
# item 3 a negative twice, user 0's row touched at t = 1, 2 and 5 (lazy moments, global bias correction)
SAMPLES = [(0, 1, 0), (0, 4, 3), (2, 2, 1), (1, 5, 3), (0, 0, 2)]


def fmt(v):
    return " ".join("%.9g" % float(x) for x in np.ravel(v))


def tensor(name, a):
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(1, -1) if a.ndim < 2 else a
    print("%s %d %d" % (name, a.shape[0], a.shape[1]))
    for row in a:
        print(fmt(row))


def weight(d):
    return 1.0 if d == T else SOURCE_WEIGHT


def softplus(z):
    return float(np.logaddexp(0.0, z))


def objective(pu, qi, qj, w):
    """The sample's objective L, forward only (for the finite-difference check)."""
    x = pu @ (qi - qj)
    return w * softplus(-x) + 0.5 * REG * (pu @ pu + qi @ qi + qj @ qj)


def data_grads(pu, qi, qj, w):
    """Unweighted loss and the weighted data-term gradients (no REG part)."""
    x = float(pu @ (qi - qj))
    s = 1.0 / (1.0 + np.exp(x))         # sigmoid(-x)
    return softplus(-x), -w * s * (qi - qj), -w * s * pu, w * s * pu


def check_gradient(pu, qi, qj, w):
    _, gu, gi, gj = data_grads(pu, qi, qj, w)
    theta = np.concatenate([pu, qi, qj])
    analytic = np.concatenate([gu, gi, gj]) + REG * theta
    h = 1e-6
    for k in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        num = (objective(*np.split(tp, 3), w) - objective(*np.split(tm, 3), w)) / (2 * h)
        assert abs(num - analytic[k]) < 1e-8, (k, num, analytic[k])


def run(kind):
    P, Q = P0.astype(np.float64), Q0.astype(np.float64)
    mom = {"P": (np.zeros_like(P), np.zeros_like(P)), "Q": (np.zeros_like(Q), np.zeros_like(Q))}
    params = {"P": P, "Q": Q}
    trace = []
    for t, (u, i, j) in enumerate(SAMPLES, start=1):
        assert ITEM_DOMAIN[i] == ITEM_DOMAIN[j] and i != j
        w = weight(ITEM_DOMAIN[i])
        pu, qi, qj = P[u].copy(), Q[i].copy(), Q[j].copy()
        check_gradient(pu, qi, qj, w)
        loss, gu, gi, gj = data_grads(pu, qi, qj, w)
        trace.append((loss, w, gu, gi, gj))
        for name, row, g in (("P", u, gu), ("Q", i, gi), ("Q", j, gj)):
            x = params[name][row]
            m, v = mom[name][0][row], mom[name][1][row]     # views: updated in place
            grad = g + REG * x
            # float32 rounding must not be able to flip a sign the optimizer normalises away
            assert np.all(np.abs(g) > 1e-6) and np.all(np.abs(grad) > 1e-6), (kind, t, name, g, grad)
            if kind == "adagrad":
                v += grad * grad
                x -= LR_ADAGRAD * grad / (np.sqrt(v) + EPS)
            else:
                m[:] = BETA1 * m + (1 - BETA1) * grad
                v[:] = BETA2 * v + (1 - BETA2) * grad * grad
                mhat, vhat = m / (1 - BETA1 ** t), v / (1 - BETA2 ** t)
                x -= LR_ADAM * mhat / (np.sqrt(vhat) + EPS)
    return P, Q, trace


def main():
    target_items = [k for k, d in enumerate(ITEM_DOMAIN) if d == T]
    print("# cmf_step.txt — golden collective-MF steps, written by tools/ref/cmf_step.py (NumPy %s, float64 arithmetic"
          % np.__version__)
    print("# from float32 inputs): /tmp/refenv/bin/python tools/ref/cmf_step.py > tests/golden/cmf_step.txt")
    print("# Do not edit: rerun the script. Read by tests/test_cmf.c (cmf_golden_steps).")
    print("dim %d" % DIM)
    print("target %d" % T)
    print("source_weight %.9g" % SOURCE_WEIGHT)
    print("reg %.9g" % REG)
    print("eps %.9g" % EPS)
    print("item_domain %d %s" % (len(ITEM_DOMAIN), " ".join(str(d) for d in ITEM_DOMAIN)))
    tensor("init_user", P0)
    tensor("init_item", Q0)
    print("samples %d" % len(SAMPLES))
    for s in SAMPLES:
        print("%d %d %d" % s)

    P, Q, trace = run("adagrad")
    print("# adagrad: per sample, its loss softplus(-x) (unweighted), its weight, and the weighted data gradients")
    print("adagrad_lr %.9g" % LR_ADAGRAD)
    for n, (loss, w, gu, gi, gj) in enumerate(trace):
        print("sample %d" % n)
        print("loss %.9g" % loss)
        print("weight %.9g" % w)
        tensor("grad", np.stack([gu, gi, gj]))
    tensor("user", P)
    tensor("item", Q)
    tensor("scores", P @ Q[target_items].T)

    P, Q, _ = run("adam")
    print("# adam from the same start: global step t = 1 .. %d" % len(SAMPLES))
    print("adam %.9g %.9g %.9g" % (LR_ADAM, BETA1, BETA2))
    tensor("user", P)
    tensor("item", Q)


if __name__ == "__main__":
    main()
