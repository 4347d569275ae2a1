#!/usr/bin/python3
"""Alpha-beta model of distributed training step times (docs/SCALING.md).

A message of n bytes between two nodes costs alpha + n / beta. On p nodes:
  ring all-reduce        2 (p-1) alpha + 2 (p-1)/p · n / beta
  reduce-scatter, all-gather: half of that each
  point to point (PP)    alpha + n / beta
Compute per node comes from a measured single-node step (flashblock bench
train) scaled by FLOPs (6 · params · tokens). Data parallel hides the
gradient all-reduce behind backward (about 2/3 of the step) as far as it
fits; tensor parallel pays 4 all-reduces of B·T·C activations per layer per
step (2 forward, 2 backward) on the intra-node link; pipeline parallel pays
the bubble (P-1)/(M+P-1) and 2 activation messages per micro-batch per stage
boundary.

usage: scaling_model.py --alpha-us A --beta-gbs B [--node-gflops G] [--json]
  alpha/beta: the link (the inter-node figures; defaults: measured veth alpha, 100 Gb/s);
  node-gflops: the training throughput of one node (measured: bench train).
"""
import argparse
import json


MODELS = {  # name: (params, layers, d_model)
    "GPT-2 124M": (124.4e6, 12, 768),
    "1.3B": (1.31e9, 24, 2048),
}


def allreduce(p, n, a, b):
    return 0.0 if p <= 1 else 2 * (p - 1) * a + 2 * (p - 1) / p * n / b


def step(model, nodes, mode, a, b, node_flops, tokens_per_node=4 * 1024, tp=1, pp=1, micro=8, intra_beta=None):
    params, layers, C = MODELS[model]
    intra_beta = intra_beta or 10 * b
    tokens = tokens_per_node * nodes
    compute = 6 * params * tokens_per_node / node_flops   # each node's share
    grad_bytes = 4 * params
    if mode == "DP":
        comm = allreduce(nodes, grad_bytes, a, b)
        exposed = max(0.0, comm - 2 / 3 * compute)
    elif mode == "DP+ZeRO-1":
        comm = allreduce(nodes, grad_bytes, a, b)   # reduce-scatter + all-gather: the same volume
        exposed = max(0.0, comm / 2 - 2 / 3 * compute) + comm / 2   # the all-gather follows the update
    elif mode == "TP in node x DP":
        dp = nodes   # tp GPUs... here: cores/sockets of a node, intra-node link
        act = 4 * tokens_per_node * C
        tp_comm = 4 * layers * allreduce(tp, act, a / 10, intra_beta)
        comm = allreduce(dp, grad_bytes / tp, a, b) + tp_comm
        exposed = tp_comm + max(0.0, allreduce(dp, grad_bytes / tp, a, b) - 2 / 3 * compute)
    else:  # "PP across nodes"
        act = 4 * tokens_per_node / micro * C
        bubble = (pp - 1) / (micro + pp - 1)
        comm = 2 * micro * (a + act / b)
        exposed = comm + compute * bubble / (1 - bubble)
    t = compute + exposed
    return {"model": model, "nodes": nodes, "mode": mode, "compute_s": compute, "comm_s": comm, "step_s": t,
            "efficiency": compute / t, "tokens_per_s": tokens / t}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpha-us", type=float, required=True)
    ap.add_argument("--beta-gbs", type=float, default=12.5)
    ap.add_argument("--node-gflops", type=float, required=True)
    ap.add_argument("--json", action="store_true")
    x = ap.parse_args()
    a, b, f = x.alpha_us * 1e-6, x.beta_gbs * 1e9, x.node_gflops * 1e9
    rows = []
    for model in MODELS:
        for nodes in (8, 16, 64):
            rows.append(step(model, nodes, "DP", a, b, f))
            rows.append(step(model, nodes, "DP+ZeRO-1", a, b, f))
            rows.append(step(model, nodes, "TP in node x DP", a, b, f, tp=2))
            rows.append(step(model, nodes, "PP across nodes", a, b, f, pp=min(nodes, 8), micro=16))
    if x.json:
        print(json.dumps(rows))
        return
    print("| model | nodes | layout | compute (s) | communication (s) | step (s) | efficiency |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['nodes']} | {r['mode']} | {r['compute_s']:.3f} | {r['comm_s']:.3f} | {r['step_s']:.3f} | {100 * r['efficiency']:.0f}% |")


if __name__ == "__main__":
    main()
