#!/usr/bin/env python3
"""tower_layers.py — PyTorch reference for the tower layers (src/core/nn_tower.h); writes
tests/golden/tower_layers.txt to stdout.

Usage (once, by hand, in a tools-only virtual environment; the output is checked in):
    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu numpy
    # if that index is unreachable: /tmp/torchenv/bin/pip install torch numpy   (PyPI)
    /tmp/torchenv/bin/python tools/ref/tower_layers.py > tests/golden/tower_layers.txt

A tiny fixed tower built from the layers, computed with PyTorch's own operators (F.embedding_bag, F.linear,
F.layer_norm, F.gelu (exact erf form, nn.GELU()'s default), F.normalize, F.cross_entropy, F.logsigmoid,
torch.softmax) and differentiated by autograd:

  (d = 6 everywhere, hidden width 10, so that the file stays small)
  item tower (6 items):  bag  = embedding_bag(E (20, 6), ragged TF-IDF weighted bags, mode sum; bag 3 empty)
                         G    = W2 dropout(GELU(LN(W1 bag + b1))) + b2 + keep * idE[item id]
                                (inverted dropout p = 0.25 with a fixed mask; id dropout drops item 2's id row)
  user tower (4 users):  history H (4, 5, 6), right-padded, lengths 5 3 1 4
                         u_att = attention pooling of H with the query of each user's target domain (3 domains)
                         T     = 2-layer causal transformer (d 6, 2 heads of 3, FFN 24, learned positions for
                                 6 (the last never used), pre-LN, final LN) over H;  u_tfm = mean pooling of T
                         U     = u_att + u_tfm
  losses:                ssm  = sampled softmax of U against C = G: in-batch (column b is row b's positive) plus
                                2 sampled negatives, log-Q correction, temperature 0.5, and an accidental hit
                                masked (candidate 4 is the same item as row 1's positive)
                         bpr  = BPR of (U, G[0:4], G[5 5 4 4])
                         nce  = symmetric InfoNCE between G and text vectors X (6, 6), tau 0.2
                         dom  = cross-entropy of a domain classifier on GRL(G) (lambda 0.3), 3 domains
                         total = ssm + 0.5 bpr + 0.7 nce + dom
  standalone:            bag_mean (mean mode, unweighted) with the loss sum(R * bag_mean); one-sided InfoNCE;
                         distill = cross-entropy of the ssm's rows against a teacher's softmax over the same candidates
                                   (teacher: u_att and G, detached, temperature 0.7, same log-Q and mask)

Inputs are float32 values (rounded to 3 decimals: round(scale * sin(0.7 + 1.618 k + 2.39 seed), 3) for the k-th
value of a tensor, or the literals below); everything is then computed in float64 from those float32 values, so
the file holds the exact answer for crossrec's float32 inputs. Tensors are written as `name rows cols` followed
by the values row by row (computed values %.9g; the float32 inputs in their shortest round-trip decimal form);
scalars as `name value`. tests/test_nn_golden.c reads the inputs from this file,
runs the same computation with crossrec's layers and compares every forward output and gradient.
"""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

V, D, NI, H1, NDOM = 20, 6, 6, 10, 3     # embedding rows, dim, items, hidden width, domains
B, L, HEADS, NLAYERS, MAXLEN = 4, 5, 2, 2, 6
P_DROP, TEMP, TAU, GRL_LAMBDA = 0.25, 0.5, 0.2, 0.3
TEMP_TEACHER = 0.7
W_BPR, W_NCE, W_DOM = 0.5, 0.7, 1.0

OFFSETS = [0, 3, 4, 7, 7, 10, 12]                       # bag 3 is empty
IDX = [3, 17, 3, 5, 0, 9, 12, 17, 2, 8, 11, 19]          # row 3 twice in bag 0, row 17 in bags 0 and 4
TFIDF = [0.5, 1.25, 0.75, 2.0, 0.3, 0.9, 1.1, 0.6, 1.4, 0.2, 1.7, 0.8]
ITEM_ID = [4, 7, 1, 2, 7, 0]                             # candidate 4 repeats item 7, row 1's positive
KEEP = [1, 1, 0, 1, 1, 1]                                # id dropout: item 2's id row is dropped
LEN = [5, 3, 1, 4]
DOM = [0, 2, 1, 2]                                       # target domain of each user
LOG_Q = [-1.5, -2.25, -1.0, -3.0, -2.5, -1.75]
NEG = [5, 5, 4, 4]                                       # BPR negatives: rows of G
ITEM_DOM = [0, 2, 1, 1, 2, 0]                            # domain classifier labels


def lit(seed, shape, scale, offset=0.0):
    n = int(np.prod(shape))
    k = np.arange(n, dtype=np.float64)
    v = np.round(offset + scale * np.sin(0.7 + 1.618 * k + 2.39 * seed), 3).astype(np.float32)
    return v.reshape(shape)


def dropout_mask():
    # a fixed mask with 2 in 7 dropped: entry k (row-major) dropped when (5 k + 2) mod 7 < 2
    k = np.arange(NI * H1)
    return ((5 * k + 2) % 7 >= 2).astype(np.float32).reshape(NI, H1)


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def leaf(a):
    return torch.tensor(np.asarray(a, dtype=np.float32).astype(np.float64), requires_grad=True)


def main():
    f32 = {
        "E": lit(1, (V, D), 0.8), "tfidf": np.array(TFIDF, dtype=np.float32),
        "W1": lit(2, (H1, D), 0.5), "b1": lit(3, (H1,), 0.2),
        "gamma": lit(4, (H1,), 0.3, 1.0), "beta": lit(5, (H1,), 0.2),
        "W2": lit(6, (D, H1), 0.4), "b2": lit(7, (D,), 0.1),
        "idE": lit(8, (10, D), 0.3),
        "H": lit(9, (B, L, D), 1.0), "q": lit(10, (NDOM, D), 0.7),
        "X": lit(11, (NI, D), 1.0), "Wd": lit(12, (NDOM, D), 0.6), "bd": lit(13, (NDOM,), 0.1),
        "R": lit(14, (NI, D), 1.0), "log_q": np.array(LOG_Q, dtype=np.float32),
    }
    d = D
    tfm_shapes = [("wpe", (MAXLEN, d)), ("ln1w", (NLAYERS, d)), ("ln1b", (NLAYERS, d)), ("qkvw", (NLAYERS * 3 * d, d)),
                  ("qkvb", (NLAYERS, 3 * d)), ("projw", (NLAYERS * d, d)), ("projb", (NLAYERS, d)),
                  ("ln2w", (NLAYERS, d)), ("ln2b", (NLAYERS, d)), ("fcw", (NLAYERS * 4 * d, d)),
                  ("fcb", (NLAYERS, 4 * d)), ("fc2w", (NLAYERS * d, 4 * d)), ("fc2b", (NLAYERS, d)),
                  ("lnfw", (1, d)), ("lnfb", (1, d))]
    for i, (name, shape) in enumerate(tfm_shapes):
        gain = name in ("ln1w", "ln2w", "lnfw")
        f32["tfm." + name] = lit(20 + i, shape, 0.2 if gain else 0.3, 1.0 if gain else 0.0)
    mask = dropout_mask()

    t = {k: leaf(v) for k, v in f32.items()}
    offsets = torch.tensor(OFFSETS, dtype=torch.long)
    idx = torch.tensor(IDX, dtype=torch.long)
    lens = torch.tensor(LEN, dtype=torch.long)
    dom = torch.tensor(DOM, dtype=torch.long)
    item_id = torch.tensor(ITEM_ID, dtype=torch.long)
    keep = torch.tensor(KEEP, dtype=torch.float64)
    mask_t = torch.tensor(mask.astype(np.float64))

    # ---- item tower ----
    bag = F.embedding_bag(idx, t["E"], offsets[:-1], mode="sum", per_sample_weights=t["tfidf"])
    h1 = F.linear(bag, t["W1"], t["b1"])
    ln = F.layer_norm(h1, (H1,), t["gamma"], t["beta"], eps=1e-5)
    gel = F.gelu(ln)                                     # approximate='none': the erf form
    drop = gel * mask_t / (1 - P_DROP)
    G = F.linear(drop, t["W2"], t["b2"]) + keep[:, None] * F.embedding(item_id, t["idE"])
    bag_mean = F.embedding_bag(idx, t["E"], offsets[:-1], mode="mean")

    # ---- user tower ----
    valid = torch.arange(L)[None, :] < lens[:, None]                        # (B, L)
    Hm = t["H"]
    s = (Hm * t["q"][dom][:, None, :]).sum(-1) / math.sqrt(d)              # (B, L)
    s = s.masked_fill(~valid, float("-inf"))
    att = torch.softmax(s, dim=1)
    u_att = (att[:, :, None] * Hm).sum(1)

    P = {name: t["tfm." + name] for name, _ in tfm_shapes}
    r = torch.where(valid[:, :, None], Hm + P["wpe"][:L][None], torch.zeros(()))
    hs = d // HEADS
    tq = torch.arange(L)
    amask = (tq[None, :] <= tq[:, None])[None, None] & (tq[None, None, None, :] < lens[:, None, None, None])
    for l in range(NLAYERS):
        a = F.layer_norm(r, (d,), P["ln1w"][l], P["ln1b"][l], eps=1e-5)
        qkv = F.linear(a, P["qkvw"][l * 3 * d:(l + 1) * 3 * d], P["qkvb"][l])
        qh, kh, vh = (x.view(B, L, HEADS, hs).transpose(1, 2) for x in qkv.split(d, dim=-1))
        sc = (qh @ kh.transpose(-2, -1)) / math.sqrt(hs)
        sc = sc.masked_fill(~amask, float("-inf"))
        y = (torch.softmax(sc, dim=-1) @ vh).transpose(1, 2).reshape(B, L, d)
        r = r + F.linear(y, P["projw"][l * d:(l + 1) * d], P["projb"][l])
        a2 = F.layer_norm(r, (d,), P["ln2w"][l], P["ln2b"][l], eps=1e-5)
        fc = F.gelu(F.linear(a2, P["fcw"][l * 4 * d:(l + 1) * 4 * d], P["fcb"][l]))
        r = r + F.linear(fc, P["fc2w"][l * d:(l + 1) * d], P["fc2b"][l])
    T = F.layer_norm(r, (d,), P["lnfw"][0], P["lnfb"][0], eps=1e-5)
    T = torch.where(valid[:, :, None], T, torch.zeros(()))
    u_tfm = T.sum(1) / lens[:, None].double()
    U = u_att + u_tfm

    # ---- losses ----
    N = NI
    hit = torch.zeros(B, N, dtype=torch.bool)
    for b in range(B):
        for j in range(N):
            hit[b, j] = j != b and ITEM_ID[j] == ITEM_ID[b]
    logits = U @ G.T / TEMP - t["log_q"][None, :]
    logits = logits.masked_fill(hit, float("-inf"))
    ar = torch.arange(B)
    l_ssm = F.cross_entropy(logits, ar)

    pos, neg = G[:B], G[NEG]
    l_bpr = -F.logsigmoid((U * (pos - neg)).sum(-1)).mean()

    an, bn = F.normalize(G, dim=1), F.normalize(t["X"], dim=1)
    z = an @ bn.T / TAU
    ai = torch.arange(NI)
    l_nce1 = F.cross_entropy(z, ai)
    l_nce = 0.5 * (l_nce1 + F.cross_entropy(z.T, ai))

    Z = F.linear(GradReverse.apply(G, GRL_LAMBDA), t["Wd"], t["bd"])
    l_dom = F.cross_entropy(Z, torch.tensor(ITEM_DOM, dtype=torch.long))

    t_logits = (u_att.detach() @ G.detach().T / TEMP_TEACHER - t["log_q"][None, :]).masked_fill(hit, float("-inf"))
    target = torch.softmax(t_logits, dim=1)
    logp = torch.log_softmax(logits, dim=1)
    l_distill = -(target * logp.masked_fill(target == 0, 0.0)).sum(1).mean()

    total = l_ssm + W_BPR * l_bpr + W_NCE * l_nce + W_DOM * l_dom
    l_mean = (t["R"].double() * bag_mean).sum()

    # per-loss gradients w.r.t. the loss inputs
    gr = lambda loss, xs: torch.autograd.grad(loss, xs, retain_graph=True)
    ssm_dU, ssm_dC = gr(l_ssm, [U, G])
    distill_dU, distill_dC = gr(l_distill, [U, G])
    bpr_du, bpr_dpos, bpr_dneg = gr(l_bpr, [U, pos, neg])
    nce_dA, nce_dB = gr(l_nce, [G, t["X"]])
    nce1_dA, nce1_dB = gr(l_nce1, [G, t["X"]])
    dom_dZ, dom_dG = gr(l_dom, [Z, G])
    dE_mean, = gr(l_mean, [t["E"]])
    total.backward()

    out = sys.stdout
    w = lambda s: out.write(s + "\n")
    w("# tower_layers.txt — golden forward outputs and gradients of a tiny tower built from crossrec's layers, written")
    w("# by tools/ref/tower_layers.py (PyTorch %s, NumPy %s; float64 arithmetic from float32 inputs). Do not edit:"
      % (torch.__version__, np.__version__))
    w("# rerun the script. Tensors: `name rows cols` then the values; scalars: `name value`.")

    def tensor(name, a, exact32=False):
        a = np.asarray(a.detach().numpy() if torch.is_tensor(a) else a, dtype=np.float64)
        shape = (a.shape[0], int(np.prod(a.shape[1:]))) if a.ndim >= 2 else (1, a.size)
        a = a.reshape(shape)
        w("%s %d %d" % (name, shape[0], shape[1]))
        # float32 inputs in their shortest round-trip form (strtod then a cast to float gives the value back),
        # computed values with %.9g
        fmt = (lambda x: np.format_float_positional(np.float32(x), unique=True, trim="-")) if exact32 else (lambda x: "%.9g" % x)
        for row in a:
            w(" ".join(fmt(x) for x in row))

    def scalar(name, v):
        w("%s %.9g" % (name, float(v.detach()) if torch.is_tensor(v) else float(v)))

    w("# ---- settings and index inputs")
    for k, v in [("rows", V), ("dim", D), ("items", NI), ("hidden", H1), ("domains", NDOM), ("users", B), ("max_hist", L),
                 ("heads", HEADS), ("layers", NLAYERS), ("max_len", MAXLEN)]:
        scalar(k, v)
    for k, v in [("p_drop", P_DROP), ("temperature", TEMP), ("tau", TAU), ("grl_lambda", GRL_LAMBDA),
                 ("temperature_teacher", TEMP_TEACHER), ("w_bpr", W_BPR),
                 ("w_nce", W_NCE), ("w_dom", W_DOM)]:
        scalar(k, v)
    for k, v in [("offsets", OFFSETS), ("idx", IDX), ("item_id", ITEM_ID), ("keep", KEEP), ("len", LEN), ("dom", DOM),
                 ("neg", NEG), ("item_dom", ITEM_DOM)]:
        tensor(k, np.array(v, dtype=np.float64))
    tensor("dropout_mask", mask, True)
    w("# ---- float32 inputs and parameters")
    for k, v in f32.items():
        tensor(k, v, True)
    w("# ---- forward outputs")
    for k, v in [("bag", bag), ("h1", h1), ("ln", ln), ("gelu", gel), ("G", G), ("bag_mean", bag_mean), ("att", att),
                 ("u_att", u_att), ("T", T), ("u_tfm", u_tfm), ("U", U), ("dom_logits", Z),
                 ("distill_target", target)]:
        tensor(k, v)
    for k, v in [("loss_ssm", l_ssm), ("loss_bpr", l_bpr), ("loss_nce", l_nce), ("loss_nce1", l_nce1), ("loss_dom", l_dom),
                 ("loss_total", total), ("loss_mean_bag", l_mean), ("loss_distill", l_distill)]:
        scalar(k, v)
    w("# ---- gradients of each loss w.r.t. its inputs")
    for k, v in [("ssm_dU", ssm_dU), ("ssm_dC", ssm_dC), ("distill_dU", distill_dU), ("distill_dC", distill_dC), ("bpr_du", bpr_du), ("bpr_dpos", bpr_dpos), ("bpr_dneg", bpr_dneg),
                 ("nce_dA", nce_dA), ("nce_dB", nce_dB), ("nce1_dA", nce1_dA), ("nce1_dB", nce1_dB), ("dom_dZ", dom_dZ),
                 ("dom_dG", dom_dG), ("mean_bag_dE", dE_mean)]:
        tensor(k, v)
    w("# ---- gradients of the total loss w.r.t. every parameter and input")
    for k in f32:
        if k in ("R", "log_q"):
            continue
        tensor("d" + k, t[k].grad)


if __name__ == "__main__":
    main()
