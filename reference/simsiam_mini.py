#!/usr/bin/env python3
"""Independent PyTorch implementation of the `mini` protocol of /work/shared/PROTOCOLS.md.

Written from the protocol text (not ported from the Swift sources) so that `ablate train
--protocol mini` can be checked against it (reference/parity.py). Only torch and numpy are
needed (no torchvision): the augmentation is implemented here.

  Data       Fashion-MNIST IDX gz files, 60k train (labels unused for training), 10k test;
             pixels /255, normalized with mean 0.2860, std 0.3530.
  Augment    per image and per view: RandomResizedCrop(28, scale (0.2, 1), ratio log-uniform in
             (3/4, 4/3), 10 tries then center crop -- torchvision's get_params), bilinear resize
             with align_corners=False (no antialias: a crop is never larger than 28x28, so the
             resize only ever upsamples); horizontal flip p=0.5; with p=0.8 brightness x*f then
             contrast m+(x-m)*f (m = mean of the image), f ~ U[0.6, 1.4] each, clamped to [0,1]
             after each (as torchvision's adjust_brightness / adjust_contrast); normalize.
  Model      convnet 16/32/64/128 (conv3x3 no bias - BN - ReLU, strides 1,2,2,2, pad 1, GAP);
             projector Linear(128,512,nobias)-BN-ReLU-Linear(512,512,nobias)-BN-ReLU-Linear(512,512);
             predictor Linear(512,128,nobias)-BN-ReLU-Linear(128,512). PyTorch default init.
  Loss       L = 1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1)), D = -mean cosine similarity.
  Optimizer  SGD momentum 0.9, wd 5e-4 on all parameters, lr 0.05*batch/256; encoder
             (backbone+projector) cosine to 0 per step, predictor constant; batch 256, drop_last.
  Monitor    per epoch: weighted kNN (k=200, tau=0.1, cosine) with the first 10,000 train images
             as memory and the first 2,000 test images as queries; z_std*sqrt(d), m_o, m_r of the
             projector outputs of the whole test set (eval mode); z_std*sqrt(d) of the last
             training batch's z1 (train mode).
  Final      full kNN (60k memory, 10k queries), linear probe, z_std*sqrt(d), m_o, m_r,
             cov_offdiag, verdict (computed: diverged / collapsed / partial-collapse / trained).

The JSON written by --json uses ablate's field names (config, seed, status, seconds,
epochs[{epoch, meanLoss, seconds, knnSubset, test{zStd,mO,mR}, trainZStd}],
final{knn, linear, test{zStd,mO,mR,covOffdiag}, verdict}); non-finite numbers are written as the strings
"nan"/"inf"/"-inf" as ablate does.

Usage:
  python3 reference/simsiam_mini.py --epochs 10 --seed 0 --json out.json
  python3 reference/simsiam_mini.py --no-stop-grad --epochs 10 --seed 1 --json out.json
  python3 reference/simsiam_mini.py --selftest     # checks the augmentation against F.interpolate
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from verdict import verdict

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
MEMORY_SIZE, QUERY_SIZE = 10_000, 2_000


# ----------------------------------------------------------------------------- data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    start = 4 + 4 * rank
    arr = np.frombuffer(data, dtype=np.uint8, count=int(np.prod(dims)), offset=start)
    return arr.reshape(dims)


def load_fashion_mnist(directory=DATA_DIR):
    def pair(prefix):
        x = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
        assert x.shape[0] == y.shape[0]
        x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)  # [N,1,28,28] in [0,1]
        return x, torch.from_numpy(y.astype(np.int64))
    return pair("train"), pair("t10k")


def normalize(x):
    return (x - MEAN) / STD


# ----------------------------------------------------------------------------- augmentation

class Augmenter:
    """Draws all random numbers from one numpy Generator (seeded), so a seed fixes the views."""

    def __init__(self, rng, size=28, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                 p_flip=0.5, p_jitter=0.8, brightness=(0.6, 1.4), contrast=(0.6, 1.4)):
        self.rng, self.size, self.scale, self.ratio = rng, size, scale, ratio
        self.p_flip, self.p_jitter, self.brightness, self.contrast = p_flip, p_jitter, brightness, contrast

    def crop_params(self, n, height, width):
        """torchvision RandomResizedCrop.get_params for n images: (top, left, h, w) arrays."""
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        tops = np.empty(n, np.int64); lefts = np.empty(n, np.int64)
        hs = np.empty(n, np.int64); ws = np.empty(n, np.int64)
        for k in range(n):
            for _ in range(10):
                target = area * self.rng.uniform(self.scale[0], self.scale[1])
                aspect = math.exp(self.rng.uniform(log_lo, log_hi))
                w = int(round(math.sqrt(target * aspect)))   # Python round: half to even, as torchvision
                h = int(round(math.sqrt(target / aspect)))
                if 0 < w <= width and 0 < h <= height:
                    tops[k] = self.rng.integers(0, height - h + 1)
                    lefts[k] = self.rng.integers(0, width - w + 1)
                    hs[k], ws[k] = h, w
                    break
            else:  # fallback: whole image, clamped to the ratio range, centered
                in_ratio = width / height
                if in_ratio < min(self.ratio):
                    w, h = width, int(round(width / min(self.ratio)))
                elif in_ratio > max(self.ratio):
                    h, w = height, int(round(height * max(self.ratio)))
                else:
                    w, h = width, height
                tops[k], lefts[k], hs[k], ws[k] = (height - h) // 2, (width - w) // 2, h, w
        return tops, lefts, hs, ws

    @staticmethod
    def _axis(start, length, out):
        """Source indices/weights of a 1-D bilinear resize (align_corners=False) of
        [start, start+length) to `out` samples: returns i0, i1 [n,out] and weight w1 [n,out]."""
        scale = length.astype(np.float64) / out                        # [n]
        pos = (np.arange(out)[None, :] + 0.5) * scale[:, None] - 0.5   # [n,out]
        pos = np.maximum(pos, 0.0)
        i0 = np.minimum(np.floor(pos).astype(np.int64), (length - 1)[:, None])
        i1 = np.minimum(i0 + 1, (length - 1)[:, None])
        w1 = pos - i0
        w1 = np.where(i1 == i0, 0.0, w1)
        return start[:, None] + i0, start[:, None] + i1, w1

    def resized_crops(self, images, tops, lefts, hs, ws):
        """Batched crop + bilinear resize to size x size: images [n,1,H,W] -> [n,1,s,s]."""
        s = self.size
        y0, y1, wy = self._axis(tops, hs, s)
        x0, x1, wx = self._axis(lefts, ws, s)
        img = images[:, 0]                                            # [n,H,W]
        b = torch.arange(img.shape[0])[:, None, None]
        y0, y1, x0, x1 = (torch.from_numpy(a) for a in (y0, y1, x0, x1))
        wy = torch.from_numpy(wy).float()[:, :, None]; wx = torch.from_numpy(wx).float()[:, None, :]
        def g(yy, xx):
            return img[b, yy[:, :, None], xx[:, None, :]]
        top = g(y0, x0) * (1 - wx) + g(y0, x1) * wx
        bottom = g(y1, x0) * (1 - wx) + g(y1, x1) * wx
        return (top * (1 - wy) + bottom * wy).unsqueeze(1)

    def __call__(self, images):
        """One augmented, normalized view of each image in images [n,1,H,W] (pixels in [0,1])."""
        n, _, H, W = images.shape
        tops, lefts, hs, ws = self.crop_params(n, H, W)
        flip = self.rng.random(n) < self.p_flip
        jitter = self.rng.random(n) < self.p_jitter
        fb = self.rng.uniform(*self.brightness, size=n)
        fc = self.rng.uniform(*self.contrast, size=n)
        x = self.resized_crops(images, tops, lefts, hs, ws)
        fl = torch.from_numpy(flip)
        x[fl] = x[fl].flip(-1)
        j = torch.from_numpy(jitter)
        if j.any():
            xj = x[j]
            b = torch.from_numpy(fb[jitter]).float().view(-1, 1, 1, 1)
            c = torch.from_numpy(fc[jitter]).float().view(-1, 1, 1, 1)
            xj = (xj * b).clamp(0, 1)                                  # brightness
            m = xj.mean(dim=(1, 2, 3), keepdim=True)
            xj = (m + (xj - m) * c).clamp(0, 1)                        # contrast
            x[j] = xj
        return normalize(x)


def selftest():
    """The batched crop+resize equals F.interpolate(bilinear, align_corners=False) on each crop."""
    (xtr, _), _ = load_fashion_mnist()
    aug = Augmenter(np.random.default_rng(123))
    imgs = xtr[:2000]
    t, l, h, w = aug.crop_params(len(imgs), 28, 28)
    fast = aug.resized_crops(imgs, t, l, h, w)
    worst = 0.0
    for k in range(len(imgs)):
        crop = imgs[k:k + 1, :, t[k]:t[k] + h[k], l[k]:l[k] + w[k]]
        ref = F.interpolate(crop, size=(28, 28), mode="bilinear", align_corners=False, antialias=False)
        worst = max(worst, (ref - fast[k:k + 1]).abs().max().item())
    ok = worst < 1e-5
    print(f"crop+resize vs F.interpolate on {len(imgs)} crops: max |diff| = {worst:.2e} -> {'ok' if ok else 'FAIL'}")
    sizes = np.stack([h, w], 1)
    print(f"crop sizes: h in [{h.min()}, {h.max()}], w in [{w.min()}, {w.max()}], "
          f"full-size crops {np.mean((h == 28) & (w == 28)) * 100:.1f}%, mean area {np.mean(h * w) / 784:.3f}")
    v = aug(imgs[:512])
    print(f"views: mean {v.mean():.3f} std {v.std():.3f} min {v.min():.3f} max {v.max():.3f} "
          f"(normalized bounds {normalize(torch.tensor(0.)):.3f}..{normalize(torch.tensor(1.)):.3f})")
    return ok


# ----------------------------------------------------------------------------- model

def convnet(widths=(16, 32, 64, 128), in_channels=1):
    layers, cin = [], in_channels
    for i, c in enumerate(widths):
        layers += [nn.Conv2d(cin, c, kernel_size=3, stride=1 if i == 0 else 2, padding=1, bias=False),
                   nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        cin = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class SimSiam(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), dim=512, pred_dim=128, predictor=True, stop_grad=True):
        super().__init__()
        self.stop_grad = stop_grad
        self.backbone = convnet(widths)
        c4 = widths[-1]
        self.projector = nn.Sequential(
            nn.Linear(c4, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim))
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim)) if predictor else nn.Identity()

    def forward(self, x1, x2):
        z1 = self.projector(self.backbone(x1))   # each view is its own BN batch
        z2 = self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        if self.stop_grad:
            z1, z2 = z1.detach(), z2.detach()
        return p1, p2, z1, z2


def D(p, z):
    return -F.cosine_similarity(p, z, dim=1).mean()


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def embed(fn, x, batch=1000):
    return torch.cat([fn(normalize(x[i:i + batch])) for i in range(0, len(x), batch)])


@torch.no_grad()
def knn_top1(memory, memory_labels, queries, query_labels, k=200, t=0.1, classes=10, chunk=500):
    mem = F.normalize(memory, dim=1)
    q = F.normalize(queries, dim=1)
    k = min(k, len(mem))
    correct = 0
    for i in range(0, len(q), chunk):
        sim = q[i:i + chunk] @ mem.T
        w, idx = sim.topk(k, dim=1)
        w = (w / t).exp()
        votes = torch.zeros(len(w), classes, dtype=torch.float64)
        votes.scatter_add_(1, memory_labels[idx], w.double())
        correct += (votes.argmax(1) == query_labels[i:i + chunk]).sum().item()
    return 100.0 * correct / len(q)


@torch.no_grad()
def diagnostics(z, covariance=True):
    Z = F.normalize(z.double(), dim=1)
    n, d = Z.shape
    o = Z.mean(0)
    R = Z - o
    out = {
        "zStd": (Z.std(0, unbiased=True).mean() * math.sqrt(d)).item(),
        "mO": o.norm().item(),
        "mR": R.norm(dim=1).mean().item(),
    }                                   # covOffdiag only when asked for (final metrics), as ablate
    if covariance:
        C = R.T @ R / (n - 1)
        out["covOffdiag"] = ((C ** 2).sum() - (C.diagonal() ** 2).sum()).item() / d
    return out


def linear_probe(xtr, ytr, xte, yte, seed, epochs=20, batch=256, lr=0.1, classes=10):
    mean = xtr.mean(0)
    std = xtr.std(0, unbiased=True).clamp_min(1e-6)
    xtr = (xtr - mean) / std
    xte = (xte - mean) / std
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 7)
        head = nn.Linear(xtr.shape[1], classes)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(xtr) / batch)       # DataLoader default: keep the last batch
    total = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(head(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    with torch.no_grad():
        return 100.0 * (head(xte).argmax(1) == yte).float().mean().item()


# ----------------------------------------------------------------------------- training

def finite_or_str(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: finite_or_str(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite_or_str(x) for x in v]
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--no-stop-grad", action="store_true")
    ap.add_argument("--no-predictor", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--no-monitor", action="store_true", help="skip the per-epoch kNN/diagnostics")
    ap.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    ap.add_argument("--json", help="write per-epoch records and final metrics here")
    ap.add_argument("--selftest", action="store_true", help="check the augmentation and exit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.selftest:
        sys.exit(0 if selftest() else 1)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (xtr, ytr), (xte, yte) = load_fashion_mnist(args.data)
    aug = Augmenter(rng)
    model = SimSiam(predictor=not args.no_predictor, stop_grad=not args.no_stop_grad)

    base_lr = 0.05 * args.batch / 256
    encoder = list(model.backbone.parameters()) + list(model.projector.parameters())
    predictor = list(model.predictor.parameters())
    groups = [{"params": encoder, "fix_lr": False}]
    if predictor:
        groups.append({"params": predictor, "fix_lr": True})
    opt = torch.optim.SGD(groups, lr=base_lr, momentum=0.9, weight_decay=5e-4)

    n = len(xtr)
    steps_per_epoch = n // args.batch        # drop_last
    total_steps = args.epochs * steps_per_epoch
    print(f"pytorch mini: {n} images, {args.epochs} epochs x {steps_per_epoch} steps, batch {args.batch}, "
          f"lr {base_lr}, seed {args.seed}, stop-grad {not args.no_stop_grad}, predictor {not args.no_predictor}, "
          f"threads {torch.get_num_threads()}", flush=True)

    def monitor():
        model.eval()
        mem = embed(model.backbone, xtr[:MEMORY_SIZE])
        feats = embed(model.backbone, xte)
        knn = knn_top1(mem, ytr[:MEMORY_SIZE], feats[:QUERY_SIZE], yte[:QUERY_SIZE])
        with torch.no_grad():
            z = model.projector(feats)
        model.train()
        return knn, diagnostics(z, covariance=False)

    def params_finite():
        return all(torch.isfinite(p).all().item() for p in model.parameters())

    records, status, step = [], "finished", 0
    t_start = time.time()
    model.train()
    for epoch in range(args.epochs):
        t0 = time.time()
        perm = torch.from_numpy(rng.permutation(n))
        total_loss, last_z1, diverged = 0.0, None, False
        for s in range(steps_per_epoch):
            imgs = xtr[perm[s * args.batch:(s + 1) * args.batch]]
            x1, x2 = aug(imgs), aug(imgs)
            for g in opt.param_groups:
                g["lr"] = base_lr if g["fix_lr"] else base_lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            p1, p2, z1, z2 = model(x1, x2)
            loss = 0.5 * D(p1, z2) + 0.5 * D(p2, z1)
            value = loss.item()
            if s == steps_per_epoch - 1:
                last_z1 = z1.detach()
            if not math.isfinite(value):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total_loss += value
            if (s + 1) % 50 == 0:
                el = time.time() - t0
                print(f"  epoch {epoch + 1} step {s + 1}/{steps_per_epoch} loss {value:.4f} "
                      f"{(s + 1) * args.batch / el:.0f} img/s", file=sys.stderr, flush=True)
        if diverged or not params_finite():
            status = "diverged"
            break
        rec = {"epoch": epoch + 1, "meanLoss": total_loss / steps_per_epoch, "seconds": time.time() - t0}
        rec["trainZStd"] = diagnostics(last_z1, covariance=False)["zStd"]
        line = f"epoch {epoch + 1:2d}  loss {rec['meanLoss']:7.4f}"
        if not args.no_monitor:
            knn, diag = monitor()
            rec["knnSubset"], rec["test"] = knn, diag
            line += f"  kNN(subset) {knn:5.2f}  z_std·√d {diag['zStd']:.3f}  m_o {diag['mO']:.3f}  m_r {diag['mR']:.3f}"
        line += f"  train z_std·√d {rec['trainZStd']:.3f}  ({rec['seconds']:.1f} s)"
        print(line, flush=True)
        records.append(rec)
    train_seconds = time.time() - t_start
    print(f"training: {status} after {train_seconds:.1f} s; evaluating…", flush=True)

    model.eval()
    ftr = embed(model.backbone, xtr)
    fte = embed(model.backbone, xte)
    knn = knn_top1(ftr, ytr, fte, yte)
    linear = None if args.no_linear else linear_probe(ftr, ytr, fte, yte, args.seed)
    with torch.no_grad():
        z = model.projector(fte)
    diag = diagnostics(z, covariance=True)
    v = verdict(status == "diverged", diag["zStd"], diag["mO"], diag["mR"])
    print(f"kNN top-1 {knn:.2f} %" + (f", linear {linear:.2f} %" if linear is not None else ""))
    print(f"z_std·√d {diag['zStd']:.3f}, m_o {diag['mO']:.3f}, m_r {diag['mR']:.3f}, cov_offdiag {diag['covOffdiag']:.4g}")
    print(f"verdict: {v}")
    total_seconds = time.time() - t_start

    if args.json:
        report = {
            "implementation": "pytorch",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "config": {
                "protocolName": "mini",
                "model": {"widths": [16, 32, 64, 128], "projectorDim": 512, "projectorOutputBN": False,
                          "predictorFixedRandom": False,
                          "predictorHidden": None if args.no_predictor else 128,
                          "stopGradient": not args.no_stop_grad},
                "epochs": args.epochs, "batch": args.batch, "baseLR": 0.05, "momentum": 0.9,
                "weightDecay": 5e-4, "predictorLRDecayed": False, "warmupEpochs": 0,
                "dataDirectory": args.data,
            },
            "seed": args.seed,
            "status": status,
            "seconds": train_seconds,          # training (+ per-epoch monitor) time, as ablate's `seconds`
            "totalSeconds": total_seconds,     # including the final evaluation
            "epochs": records,
            "final": {"knn": knn, "linear": linear, "test": diag, "verdict": v},
        }
        with open(args.json, "w") as f:
            json.dump(finite_or_str(report), f, indent=2, sort_keys=True)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
