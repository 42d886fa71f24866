#!/usr/bin/env python3
"""als_step.py — NumPy reference for one implicit-ALS user half-step; writes tests/golden/als_step.txt to stdout.

Usage (once, by hand; the output is checked in):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy
    /tmp/refenv/bin/python tools/ref/als_step.py > tests/golden/als_step.txt

Model (Hu, Koren, Volinsky 2008): events (u, i, value) of one (user, item) pair are summed into v; the pair has
confidence c = 1 + ALPHA |v| and preference p = 1 if v > 0 else 0; a pair with v = 0 is dropped; every other
pair has c = 1, p = 0. The objective is
    L = sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + REG (|X|^2 + |Y|^2).
With the item factors Y fixed, each user's new vector is the exact minimiser:
    x_u = (Y^T C_u Y + REG I)^{-1} Y^T C_u p_u
computed here densely with numpy.linalg.solve (C_u is the diagonal of all n_items confidences).

The factors are written as literals, rounded to float32 (crossrec stores float32) and then computed in float64.
The file lists the settings, the float32 item factors, the float32 starting user factors, the events in input
order, the objective L after the step (new X, same Y) and the new user factors, all numbers with %.9g.
tests/test_als.c (als_golden_step) reads everything from the file, builds the training pairs with
cr_als_data_init, runs cr_als_half_step with cg_steps = dim (conjugate gradient is exact after dim steps up to
rounding) and compares within 1e-4.
"""
import numpy as np

DIM = 3
ALPHA = 2.0
REG = 0.1

Y0 = np.array([                 # 5 items x 3
    [0.31, -0.12, 0.45],
    [-0.22, 0.38, 0.09],
    [0.14, 0.27, -0.33],
    [-0.41, -0.05, 0.18],
    [0.07, -0.36, -0.24],
], dtype=np.float32)
X0 = np.array([                 # 4 users x 3: only the starting point of CG; the exact solution ignores it
    [0.05, 0.11, -0.08],
    [-0.13, 0.02, 0.16],
    [0.09, -0.07, 0.04],
    [0.00, 0.12, -0.10],
], dtype=np.float32)
# (user, item, value) in input order: user 0 repeats item 1; user 1 dislikes item 0 (negative value: p = 0 with
# confidence 1 + ALPHA); user 2's two events on item 4 cancel (the pair is dropped); user 3 has four plain events.
EVENTS = [
    (0, 0, 1.0), (0, 1, 1.0), (0, 1, 1.0),
    (1, 2, 2.0), (1, 3, 1.0), (1, 0, -1.0),
    (2, 4, 1.0), (2, 1, 1.0), (2, 4, -1.0),
    (3, 3, 1.0), (3, 4, 1.0), (3, 2, 1.0), (3, 0, 1.0),
]


def fmt(v):
    return " ".join("%.9g" % float(x) for x in v)


def main():
    Y = Y0.astype(np.float64)
    n_users, n_items = X0.shape[0], Y0.shape[0]
    V = np.zeros((n_users, n_items))
    for u, i, v in EVENTS:
        V[u, i] += v
    C = 1.0 + ALPHA * np.abs(V)         # unobserved and dropped pairs: V = 0, so c = 1
    P = (V > 0).astype(np.float64)
    X = np.zeros((n_users, DIM))
    for u in range(n_users):
        A = Y.T @ (C[u][:, None] * Y) + REG * np.eye(DIM)
        b = Y.T @ (C[u] * P[u])
        X[u] = np.linalg.solve(A, b)
    S = X @ Y.T
    objective = float(np.sum(C * (P - S) ** 2) + REG * (np.sum(X * X) + np.sum(Y * Y)))

    print("# als_step.txt — golden implicit-ALS user half-step, written by tools/ref/als_step.py (NumPy %s, float64"
          % np.__version__)
    print("# arithmetic from float32 inputs; exact solves with numpy.linalg.solve). Do not edit: rerun the script.")
    print("dim %d" % DIM)
    print("alpha %.9g" % ALPHA)
    print("reg %.9g" % REG)
    print("items %d" % n_items)
    for row in Y0:
        print(fmt(row))
    print("users %d" % n_users)
    for row in X0:
        print(fmt(row))
    print("events %d" % len(EVENTS))
    for u, i, v in EVENTS:
        print("%d %d %.9g" % (u, i, v))
    print("objective %.9g" % objective)
    print("solution %d" % n_users)
    for row in X:
        print(fmt(row))


if __name__ == "__main__":
    main()
