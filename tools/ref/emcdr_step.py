#!/usr/bin/env python3
"""emcdr_step.py — NumPy reference for steps of emcdr's mapping MLP; writes tests/golden/emcdr_step.txt to stdout.

Usage (once, by hand; the output is checked in):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy
    /tmp/refenv/bin/python tools/ref/emcdr_step.py > tests/golden/emcdr_step.txt

Model (src/train/fit_emcdr.c, src/models/emcdr.c, emcdr_impl.h): after the two BPR-MF fits, a mapping f from a
user's source factors to its target factors, an MLP dim -> hidden = 2 dim (tanh) -> dim. For a mini-batch of B
users, X (B, dim) their source vectors (rows) and Y* (B, dim) their target vectors:
    H = tanh(X W0^T + b0)           W0 (hidden, dim), b0 (hidden)
    Y = H W1^T + b1                 W1 (dim, hidden), b1 (dim)
    L = mean over the B dim entries of (Y - Y*)^2
Gradients (derived here in matrix form, checked against central differences of L):
    dY = 2 (Y - Y*) / (B dim);  dW1 = dY^T H;  db1 = sum_rows dY;  dZ = (dY W1) * (1 - H^2);  dW0 = dZ^T X;
    db0 = sum_rows dZ
One step of Adam (lr LR, weight decay WD added to the gradient: g = grad + WD * param; b1, b2, eps as below) on
every parameter, t = the step's 1-based index:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= LR (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

The file has the settings, the starting weights and the first batch (float32 literals, computed in float64);
step 1: the forward output Y, the loss, dL/dY, the four gradients and the weights after the step; step 2 (a
second, smaller batch from the weights after step 1; t = 2): its output, loss, gradients and the weights after
it. A tensor is a line `name rows cols` followed by its rows (weights in crossrec's (out, in) layout); a scalar
is `name value`; numbers are %.9g. tests/test_emcdr.c (emcdr_golden_step) runs cr_emcdr_map_grad and
cr_opt_dense_step (the mapping step of fit_emcdr.c) on them and compares within 1e-5 relative (plus 1e-6
absolute; 1e-7 for the gradients).
"""
import numpy as np

DIM, HIDDEN = 3, 6
LR, WD = 0.01, 1e-4             # fit_emcdr.c's EMCDR_MAP_LR, EMCDR_MAP_WD
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8

f32 = lambda a: np.array(a, dtype=np.float32)
W0 = f32([[0.42, -0.31, 0.18], [-0.27, 0.55, 0.09], [0.36, 0.12, -0.48],
          [-0.14, -0.39, 0.25], [0.51, 0.07, 0.33], [-0.22, 0.46, -0.35]])
B0 = f32([0.05, -0.12, 0.08, 0.15, -0.06, 0.11])
W1 = f32([[0.31, -0.24, 0.45, 0.12, -0.37, 0.28],
          [-0.19, 0.41, 0.06, -0.33, 0.22, 0.49],
          [0.26, 0.13, -0.38, 0.44, 0.17, -0.29]])
B1 = f32([0.07, -0.04, 0.09])
X1 = f32([[0.62, -0.35, 0.18], [-0.27, 0.81, -0.44], [0.15, 0.29, 0.73], [-0.56, -0.12, 0.38]])   # source vectors
T1 = f32([[0.33, 0.12, -0.41], [-0.18, 0.57, 0.26], [0.44, -0.23, 0.09], [0.05, 0.38, -0.29]])   # target vectors
X2 = f32([[0.21, 0.47, -0.63], [0.74, -0.08, 0.36], [-0.41, 0.55, 0.12]])
T2 = f32([[-0.36, 0.19, 0.52], [0.28, -0.45, 0.07], [0.11, 0.34, -0.22]])
NAMES = ["w0", "b0", "w1", "b1"]


def fmt(v):
    return " ".join("%.9g" % float(x) for x in np.ravel(v))


def tensor(name, a):
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(1, -1) if a.ndim < 2 else a
    print("%s %d %d" % (name, a.shape[0], a.shape[1]))
    for row in a:
        print(fmt(row))


def forward(p, X):
    H = np.tanh(X @ p["w0"].T + p["b0"])
    return H, H @ p["w1"].T + p["b1"]


def loss_of(p, X, T):
    return float(np.mean((forward(p, X)[1] - T) ** 2))


def gradients(p, X, T):
    H, Y = forward(p, X)
    dY = 2.0 * (Y - T) / Y.size
    dZ = (dY @ p["w1"]) * (1.0 - H * H)
    g = {"w1": dY.T @ H, "b1": dY.sum(axis=0), "w0": dZ.T @ X, "b0": dZ.sum(axis=0)}
    return Y, dY, g


def check_gradients(p, X, T, g):
    h = 1e-6
    for n in NAMES:
        for k in range(p[n].size):
            q = {m: p[m].copy() for m in NAMES}
            q[n].flat[k] += h
            up = loss_of(q, X, T)
            q[n].flat[k] -= 2 * h
            num = (up - loss_of(q, X, T)) / (2 * h)
            assert abs(num - g[n].flat[k]) < 1e-9, (n, k, num, g[n].flat[k])


def adam(p, g, mom, t):
    for n in NAMES:
        grad = g[n] + WD * p[n]
        # float32 rounding must not be able to flip a sign the optimizer normalises away
        assert np.all(np.abs(grad) > 1e-6), (n, grad)
        m, v = mom[n]
        m[...] = BETA1 * m + (1 - BETA1) * grad
        v[...] = BETA2 * v + (1 - BETA2) * grad * grad
        p[n] = p[n] - LR * (m / (1 - BETA1 ** t)) / (np.sqrt(v / (1 - BETA2 ** t)) + EPS)


def main():
    p = {"w0": W0.astype(np.float64), "b0": B0.astype(np.float64), "w1": W1.astype(np.float64),
         "b1": B1.astype(np.float64)}
    mom = {n: (np.zeros_like(p[n]), np.zeros_like(p[n])) for n in NAMES}
    print("# emcdr_step.txt — golden steps of emcdr's mapping MLP, written by tools/ref/emcdr_step.py (NumPy %s,"
          % np.__version__)
    print("# float64 arithmetic from float32 inputs): /tmp/refenv/bin/python tools/ref/emcdr_step.py > tests/golden/emcdr_step.txt")
    print("# Do not edit: rerun the script. Read by tests/test_emcdr.c (emcdr_golden_step).")
    print("dim %d" % DIM)
    print("hidden %d" % HIDDEN)
    print("adam %.9g %.9g %.9g %.9g %.9g" % (LR, WD, BETA1, BETA2, EPS))
    for n, a in zip(NAMES, (W0, B0, W1, B1)):
        tensor("init_" + n, a)
    for step, (X, T) in enumerate(((X1, T1), (X2, T2)), start=1):
        print("# step %d" % step)
        tensor("x", X)
        tensor("t", T)
        X, T = X.astype(np.float64), T.astype(np.float64)
        Y, dY, g = gradients(p, X, T)
        check_gradients(p, X, T, g)
        tensor("y", Y)
        print("loss %.9g" % loss_of(p, X, T))
        tensor("dy", dY)
        for n in NAMES:
            tensor("grad_" + n, g[n])
        adam(p, g, mom, step)
        for n in NAMES:
            tensor(n, p[n])


if __name__ == "__main__":
    main()
