#!/usr/bin/env python3
"""PyTorch reference for `ablate bench`: the same SimSiam training step on the CPU.

Model (PROTOCOLS.md, `mini`): convnet(c1..c4) = 4 x [conv3x3 (no bias, pad 1, strides 1,2,2,2)
- BN - ReLU], global average pool; projector c4->512->512->512 with BN+ReLU on the hidden
layers only (last Linear has a bias); predictor 512->128 (no bias) - BN - ReLU -> 512 (bias).
Step: zero_grad, forward both views (batch 256, 1x28x28 random inputs, no augmentation),
L = 1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1)), backward, SGD (momentum 0.9, wd 5e-4,
lr 0.05*B/256; encoder cosine per step, predictor fixed lr).

Prints one JSON line with the same keys as ablate's StepBenchmarkResult. images_per_second
counts batch images (B per step, each seen as two views) per second from the median step time.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = {"mini": (16, 32, 64, 128), "convnet-w": (32, 64, 128, 256)}


def convnet(widths, in_channels=1):
    layers, cin = [], in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(cin, w, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                   nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class SimSiam(nn.Module):
    def __init__(self, widths, dim=512, pred_dim=128):
        super().__init__()
        self.backbone = convnet(widths)
        self.projector = nn.Sequential(
            nn.Linear(widths[-1], dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim))
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim))

    def forward(self, x1, x2):
        z1 = self.projector(self.backbone(x1))
        z2 = self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return p1, p2, z1.detach(), z2.detach()


def loss_fn(p1, p2, z1, z2):
    return -0.5 * (F.cosine_similarity(p1, z2, dim=-1).mean() + F.cosine_similarity(p2, z1, dim=-1).mean())


# --- The other methods of `ablate bench --method`, with ablate's `mini` defaults (Sources/SSL/*.swift):
# the protocol's backbone and projector, each method's loss and after-update hook.

class SimSiamMethod(SimSiam):
    def loss(self, x1, x2):
        return loss_fn(*self(x1, x2))

    def after_step(self, t, total):
        pass


def projector(widths, dim=512):
    return SimSiam(widths, dim).projector


def predictor(dim=512, pred_dim=128):
    return SimSiam((1,), dim, pred_dim).predictor


class BYOL(nn.Module):
    """Online backbone + projector + predictor; target = EMA copy, tau from 0.99 to 1 (cosine)."""

    def __init__(self, widths):
        super().__init__()
        self.backbone, self.projector, self.predictor = convnet(widths), projector(widths), predictor()
        self.target_backbone, self.target_projector = convnet(widths), projector(widths)
        for p in list(self.target_backbone.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)

    def loss(self, x1, x2):
        p1 = self.predictor(self.projector(self.backbone(x1)))
        p2 = self.predictor(self.projector(self.backbone(x2)))
        with torch.no_grad():
            t1 = self.target_projector(self.target_backbone(x1))
            t2 = self.target_projector(self.target_backbone(x2))

        def L(p, z):
            return (2 - 2 * (F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(dim=1)).mean()
        return L(p1, t2) + L(p2, t1)

    def after_step(self, t, total):
        tau = 1 - (1 - 0.99) * (math.cos(math.pi * t / total) + 1) / 2
        with torch.no_grad():
            online = list(self.backbone.parameters()) + list(self.projector.parameters())
            target = list(self.target_backbone.parameters()) + list(self.target_projector.parameters())
            for tp, op in zip(target, online):
                tp.mul_(tau).add_(op, alpha=1 - tau)


class SimCLR(nn.Module):
    """NT-Xent over the 2N projections, tau = 0.5."""

    def __init__(self, widths):
        super().__init__()
        self.backbone, self.projector = convnet(widths), projector(widths)

    def loss(self, x1, x2):
        a, b = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        n = a.shape[0]
        z = torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)])
        logits = z @ z.t() / 0.5 - 1e9 * torch.eye(2 * n)
        return F.cross_entropy(logits, (torch.arange(2 * n) + n) % (2 * n))

    def after_step(self, t, total):
        pass


class MoCo(nn.Module):
    """MoCo v2: EMA key encoder (m = 0.99), queue of 4096 keys, InfoNCE with tau = 0.2."""

    def __init__(self, widths, dim=512, queue=4096):
        super().__init__()
        self.backbone, self.projector = convnet(widths), projector(widths, dim)
        self.key_backbone, self.key_projector = convnet(widths), projector(widths, dim)
        for p in list(self.key_backbone.parameters()) + list(self.key_projector.parameters()):
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue, dim), dim=1))
        self.pointer, self.pending = 0, None

    def loss(self, x1, x2):
        q = F.normalize(self.projector(self.backbone(x1)), dim=1)
        with torch.no_grad():
            k = F.normalize(self.key_projector(self.key_backbone(x2)), dim=1)
        logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ self.queue.clone().t()], dim=1) / 0.2
        self.pending = k
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))

    def after_step(self, t, total):
        with torch.no_grad():
            key = list(self.key_backbone.parameters()) + list(self.key_projector.parameters())
            for kp, qp in zip(key, list(self.backbone.parameters()) + list(self.projector.parameters())):
                kp.mul_(0.99).add_(qp, alpha=0.01)
            n = self.pending.shape[0]
            idx = (torch.arange(n) + self.pointer) % self.queue.shape[0]
            self.queue[idx] = self.pending
            self.pointer = (self.pointer + n) % self.queue.shape[0]


def sinkhorn(out, eps=0.05, iters=3):
    Q = torch.exp(out / eps).t()
    B, K = Q.shape[1], Q.shape[0]
    Q = Q / torch.sum(Q)
    for _ in range(iters):
        Q = Q / torch.sum(Q, dim=1, keepdim=True) / K
        Q = Q / torch.sum(Q, dim=0, keepdim=True) / B
    return (Q * B).t()


class SwAV(nn.Module):
    """100 prototypes (normalised before each forward), Sinkhorn codes without gradient, tau = 0.1."""

    def __init__(self, widths, dim=512, k=100):
        super().__init__()
        self.backbone, self.projector = convnet(widths), projector(widths, dim)
        self.prototypes = nn.Linear(dim, k, bias=False)

    def loss(self, x1, x2):
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        s1 = self.prototypes(F.normalize(self.projector(self.backbone(x1)), dim=1))
        s2 = self.prototypes(F.normalize(self.projector(self.backbone(x2)), dim=1))
        with torch.no_grad():
            q1, q2 = sinkhorn(s1.detach()), sinkhorn(s2.detach())

        def ell(q, s):
            return -(q * F.log_softmax(s / 0.1, dim=1)).sum(dim=1).mean()
        return 0.5 * (ell(q2, s1) + ell(q1, s2))

    def after_step(self, t, total):
        pass


METHODS = {"simsiam": lambda w: SimSiamMethod(w), "byol": BYOL, "simclr": SimCLR, "moco": MoCo, "swav": SwAV}


def cpu_accounting():
    """(machine busy seconds from /proc/stat, own CPU seconds, wall seconds), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [float(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(v) - v[3] - v[4]) / ticks, r.ru_utime + r.ru_stime, time.perf_counter()


def other_processes_busy_cores(start, end):
    """Cores other processes kept busy between two cpu_accounting() snapshots."""
    if start is None or end is None or end[2] <= start[2]:
        return None
    return max(0.0, (end[0] - start[0]) - (end[1] - start[1])) / (end[2] - start[2])


def peak_rss_kib():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="mini")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=sorted(METHODS), default="simsiam",
                    help="the method's step (ablate's mini defaults); simsiam is the model comparison")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 2:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 2")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    widths = MODELS[args.model]
    model = METHODS[args.method](widths).train()
    lr = 0.05 * args.batch / 256
    total = args.warmup + args.steps
    fixed = list(model.predictor.parameters()) if args.method == "simsiam" else []
    fixed_ids = {id(p) for p in fixed}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in fixed_ids], "fix_lr": False}]
    if fixed:
        groups.append({"params": fixed, "fix_lr": True})
    opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=5e-4)
    x1 = torch.randn(args.batch, 1, 28, 28)
    x2 = torch.randn(args.batch, 1, 28, 28)
    setup_rss = peak_rss_kib()

    def step(t):
        cur = lr * 0.5 * (1 + math.cos(math.pi * t / total))
        for g in opt.param_groups:
            g["lr"] = lr if g["fix_lr"] else cur
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x1, x2)
        loss.backward()
        opt.step()
        model.after_step(t, total)
        return loss.item()

    loss = 0.0
    for t in range(args.warmup):
        loss = step(t)
    times = []
    cpu0 = cpu_accounting()
    for t in range(args.steps):
        t0 = time.perf_counter()
        loss = step(args.warmup + t)
        times.append((time.perf_counter() - t0) * 1000)
    other = other_processes_busy_cores(cpu0, cpu_accounting())
    if not math.isfinite(loss):
        print(f"bench_torch: loss is {loss}; the measurement is meaningless", file=sys.stderr)
        sys.exit(1)
    median = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch", "torch_version": torch.__version__,
        "model": args.model if args.method == "simsiam" else f"{args.model}/{args.method}",
        "widths": list(widths), "batch": args.batch,
        "warmup_steps": args.warmup, "timed_steps": args.steps,
        "ms_per_step_median": median, "ms_per_step_mean": statistics.fmean(times),
        "ms_per_step_min": min(times),
        "images_per_second": args.batch / (median / 1000),
        "peak_rss_kib": peak_rss_kib(), "setup_rss_kib": setup_rss,
        "final_loss": loss, "threads": torch.get_num_threads(),
        "other_processes_busy_cores": other,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
