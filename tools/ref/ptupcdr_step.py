#!/usr/bin/env python3
"""ptupcdr_step.py — NumPy reference for steps of ptupcdr's bridge; writes tests/golden/ptupcdr_step.txt to stdout.

Usage (once, by hand; the output is checked in):
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy
    /tmp/refenv/bin/python tools/ref/ptupcdr_step.py > tests/golden/ptupcdr_step.txt

Model (src/models/ptupcdr_impl.h, ptupcdr.c; fitted by src/train/fit_ptupcdr.c): for a user with source factors s
(dim) and source history V (n, dim) (one source item vector per row), the characteristic encoder h (dim -> dim,
tanh -> 1) and the meta network g (dim -> dim, tanh -> dim^2), each weight (out, in) as in crossrec:
    e_j = h(V_j) = w1e . tanh(W0e V_j + b0e) + b1e      attention logits, j = 1..n
    a = softmax(e)                                      history attention weights
    c = sum_j a_j V_j                                   (dim)
    W = reshape(W1m tanh(W0m c + b0m) + b1m, (dim, dim)), row-major: W[k][l] = output k dim + l
    t = W s                                             the mapped (target-space) user vector
For a target event (i, j) of the user, positive q_i and negative q_j (target item factors, constants, as s and
V are), x = <t, q_i - q_j> and the event's loss is softplus(-x) = -log sigmoid(x). A mini-batch of B events
has the loss (1/B) sum of the events' losses, minimised over h's and g's parameters only. Its gradient is
derived here in matrix form (dx = -sigmoid(-x) / B; dt = dx (q_i - q_j); dW = dt s^T; back through g to dc;
da_j = <dc, V_j>; de = a * (da - <a, da>); back through h) and checked against central differences of the loss.
One Adam step (lr LR, weight decay WD added to the gradient, b1, b2, eps as below; t = the step's 1-based
index) on every parameter of h and g:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= LR (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Note: the softmax does not change when every e_j moves by the same amount, so the loss does not depend on h's
output bias b1e: its gradient is exactly 0 (here, and in crossrec up to float rounding). Adam normalises a
gradient by its own size, so crossrec moves b1e by rounding noise, up to LR per step, while the reference does
not move it; the test therefore checks b1e's gradient against 0 (1e-8), excludes b1e's value after a step and
compares the logits net of each side's own b1e (e_j - b1e, what the softmax sees). This changes nothing the
model computes.

The file has the settings, the starting weights, and two steps, each on a batch of events (float32 literals,
computed in float64). Step 1 (t = 1) has two users' events, with histories of 3 and 2 items; for each event
the forward pass (e, a, c, W, t, x, loss), then the batch loss, the gradients of all 8 tensors and the weights
after the step. Step 2 (t = 2, from the weights after step 1) has one event: its loss, the gradients and the
weights after it. A tensor is a line `name rows cols` followed by its rows; a scalar is `name value`; numbers
are %.9g. tests/test_ptupcdr.c (ptupcdr_golden_step) runs cr_ptupcdr_event on each event with scale 1/B and
cr_opt_dense_step (fit_ptupcdr.c's batch step) and compares within 1e-5 relative (plus 1e-6 absolute; 1e-7 for
the gradients).
"""
import numpy as np

DIM = 3
LR, WD = 0.005, 0.0             # fit_ptupcdr.c's PTUPCDR_LR, PTUPCDR_WD
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
NAMES = ["enc.w0", "enc.b0", "enc.w1", "enc.b1", "meta.w0", "meta.b0", "meta.w1", "meta.b1"]
SHAPES = {"enc.w0": (DIM, DIM), "enc.b0": (1, DIM), "enc.w1": (1, DIM), "enc.b1": (1, 1),
          "meta.w0": (DIM, DIM), "meta.b0": (1, DIM), "meta.w1": (DIM * DIM, DIM), "meta.b1": (1, DIM * DIM)}
ZERO_GRAD = "enc.b1"            # the softmax is shift-invariant: see the note above


def start_weights():
    """Fixed 'random' float32 weights: a sine pattern (no generator to reproduce), scaled per tensor."""
    p, k = {}, 0
    for n in NAMES:
        r, c = SHAPES[n]
        vals = [0.6 * np.sin(1.7 * (k + q) + 0.3) for q in range(r * c)]
        k += r * c
        p[n] = np.array(vals, dtype=np.float32).reshape(r, c)
    return p


f32 = lambda a: np.array(a, dtype=np.float32)
# events: (history V (n, dim), s (dim), q_i, q_j)
STEP1 = [
    (f32([[0.52, -0.31, 0.24], [-0.18, 0.66, 0.09], [0.37, 0.14, -0.58]]), f32([0.71, -0.42, 0.35]),
     f32([0.28, -0.15, 0.44]), f32([-0.33, 0.21, -0.12])),
    (f32([[-0.45, 0.27, 0.61], [0.19, -0.54, 0.08]]), f32([-0.26, 0.58, 0.47]),
     f32([-0.19, 0.36, 0.23]), f32([0.41, -0.08, -0.27])),
]
STEP2 = [
    (f32([[0.11, 0.48, -0.36], [0.63, -0.22, 0.17], [-0.29, -0.41, 0.55], [0.05, 0.33, 0.26]]), f32([0.39, 0.24, -0.61]),
     f32([0.17, 0.42, -0.31]), f32([-0.24, -0.13, 0.38])),
]


def fmt(v):
    return " ".join("%.9g" % float(x) for x in np.ravel(v))


def tensor(name, a):
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(1, -1) if a.ndim < 2 else a
    print("%s %d %d" % (name, a.shape[0], a.shape[1]))
    for row in a:
        print(fmt(row))


def forward(p, V, s, qi, qj):
    He = np.tanh(V @ p["enc.w0"].T + p["enc.b0"])           # (n, dim)
    e = (He @ p["enc.w1"].T + p["enc.b1"])[:, 0]            # (n)
    a = np.exp(e - e.max())
    a /= a.sum()
    c = a @ V
    hm = np.tanh(p["meta.w0"] @ c + p["meta.b0"][0])        # (dim)
    W = (p["meta.w1"] @ hm + p["meta.b1"][0]).reshape(DIM, DIM)
    t = W @ s
    x = float(t @ (qi - qj))
    return dict(He=He, e=e, a=a, c=c, hm=hm, W=W, t=t, x=x, loss=float(np.logaddexp(0.0, -x)))


def batch_loss(p, events):
    return sum(forward(p, *ev)["loss"] for ev in events) / len(events)


def batch_grad(p, events):
    g = {n: np.zeros(SHAPES[n]) for n in NAMES}
    for V, s, qi, qj in events:
        f = forward(p, V, s, qi, qj)
        dx = -1.0 / (1.0 + np.exp(f["x"])) / len(events)    # d softplus(-x)/dx = -sigmoid(-x)
        dW = np.outer(dx * (qi - qj), s)                      # dt = dx (qi - qj); t = W s
        dout = dW.reshape(-1)                                 # d(meta output)
        g["meta.w1"] += np.outer(dout, f["hm"])
        g["meta.b1"][0] += dout
        dzm = (p["meta.w1"].T @ dout) * (1.0 - f["hm"] ** 2)
        g["meta.w0"] += np.outer(dzm, f["c"])
        g["meta.b0"][0] += dzm
        dc = p["meta.w0"].T @ dzm
        da = V @ dc
        de = f["a"] * (da - f["a"] @ da)                       # softmax backward
        g["enc.w1"][0] += de @ f["He"]
        g["enc.b1"][0, 0] += de.sum()
        dze = np.outer(de, p["enc.w1"][0]) * (1.0 - f["He"] ** 2)
        g["enc.w0"] += dze.T @ V
        g["enc.b0"][0] += dze.sum(axis=0)
    return g


def check_gradients(p, events, g):
    h = 1e-6
    for n in NAMES:
        for k in range(p[n].size):
            q = {m: p[m].copy() for m in NAMES}
            q[n].flat[k] += h
            up = batch_loss(q, events)
            q[n].flat[k] -= 2 * h
            num = (up - batch_loss(q, events)) / (2 * h)
            assert abs(num - g[n].flat[k]) < 1e-9, (n, k, num, g[n].flat[k])
    assert abs(g[ZERO_GRAD][0, 0]) < 1e-15


def adam(p, g, mom, t):
    for n in NAMES:
        grad = g[n] + WD * p[n]
        if n != ZERO_GRAD:
            # float32 rounding must not be able to flip a sign the optimizer normalises away
            assert np.all(np.abs(grad) > 1e-6), (n, grad)
        m, v = mom[n]
        m[...] = BETA1 * m + (1 - BETA1) * grad
        v[...] = BETA2 * v + (1 - BETA2) * grad * grad
        p[n] = p[n] - LR * (m / (1 - BETA1 ** t)) / (np.sqrt(v / (1 - BETA2 ** t)) + EPS)


def main():
    p32 = start_weights()
    p = {n: p32[n].astype(np.float64) for n in NAMES}
    mom = {n: (np.zeros(SHAPES[n]), np.zeros(SHAPES[n])) for n in NAMES}
    print("# ptupcdr_step.txt — golden steps of ptupcdr's bridge, written by tools/ref/ptupcdr_step.py (NumPy %s,"
          % np.__version__)
    print("# float64 arithmetic from float32 inputs): /tmp/refenv/bin/python tools/ref/ptupcdr_step.py > tests/golden/ptupcdr_step.txt")
    print("# Do not edit: rerun the script. Read by tests/test_ptupcdr.c (ptupcdr_golden_step).")
    print("dim %d" % DIM)
    print("adam %.9g %.9g %.9g %.9g %.9g" % (LR, WD, BETA1, BETA2, EPS))
    for n in NAMES:
        tensor("init_" + n, p32[n])
    for step, events in enumerate((STEP1, STEP2), start=1):
        print("# step %d" % step)
        print("events %d" % len(events))
        ev64 = []
        for V, s, qi, qj in events:
            tensor("history", V)
            tensor("s", s)
            tensor("qi", qi)
            tensor("qj", qj)
            ev = tuple(a.astype(np.float64) for a in (V, s, qi, qj))
            ev64.append(ev)
            f = forward(p, *ev)
            tensor("e", f["e"])
            tensor("a", f["a"])
            tensor("c", f["c"])
            tensor("bridge", f["W"])
            tensor("mapped", f["t"])
            print("x %.9g" % f["x"])
            print("loss %.9g" % f["loss"])
        g = batch_grad(p, ev64)
        check_gradients(p, ev64, g)
        print("batch_loss %.9g" % batch_loss(p, ev64))
        for n in NAMES:
            tensor("grad_" + n, g[n])
        adam(p, g, mom, step)
        for n in NAMES:
            tensor(n, p[n])


if __name__ == "__main__":
    main()
