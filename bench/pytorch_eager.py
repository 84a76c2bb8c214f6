#!/usr/bin/python3
"""The baseline casdm is measured against: the same models written in PyTorch, in Python, eager.

improved-diffusion's U-Net with casdm's parameter names (so casdm's weights load strictly), the
cosine process, the ε-only step (DDPM_Eps), the Cas-DM step (θ → ε′, x0⋆ from the detached ε′, φ →
[x0′, r], L_ε + L_x0 + L_μ, optionally + 0.1·LPIPS at a feature side) and the DDIM loop (η = 0,
clipped, the r-mixed estimate on the cascade), trained with torch.optim.AdamW (multi-tensor, as
casdm's) and an EMA, as a careful PyTorch user writes them. What one training step does matches
casdm::train::Trainer::step: draw t and ε, losses, backward, the gradients' global norm, one host
sync to check the loss and norm are finite, AdamW, EMA.

  bench/pytorch_eager.py time --workload train --preset CasDM --config main --batch 32
  bench/pytorch_eager.py time --workload ddim --preset CasDM --config main --batch 1 --steps 20
  bench/pytorch_eager.py check DIR     # the replica against tensors written by casdm (tests)

`time` prints one JSON line: ms per iteration, iterations, peak resident memory over the process's
memory before the model was built (MiB), FLOP per image of each network and achieved TFLOP/s.
bench/vs_pytorch.py runs it beside casdm's benchmark and prints the ratios.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Sizes (bench/main_job_options.hpp and the paper's CIFAR-10 U-Net)

CONFIGS = {
    # the main job: Fashion-MNIST 28×28, 16 ch, channel_mult (1,2,2), attention at 7, T = 1000
    "main": dict(image_size=28, channels=1, model_channels=16, channel_mult=(1, 2, 2), num_res_blocks=1,
                 attention_resolutions=(7,), num_heads=4, norm_groups=8, dropout=0.0, T=1000),
    # the paper's CIFAR-10 configuration (improved-diffusion's): 128 ch, 3 blocks, attention at 16 and 8
    "paper": dict(image_size=32, channels=3, model_channels=128, channel_mult=(1, 2, 2, 2), num_res_blocks=3,
                  attention_resolutions=(16, 8), num_heads=4, norm_groups=32, dropout=0.3, T=4000),
}


# ---------------------------------------------------------------------------------------------
# The network (casdm/net/blocks.hpp, casdm/net/unet.hpp)

def timestep_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.Module):
    def __init__(self, groups, channels):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, x):
        return self.norm(x.float()).type(x.dtype)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def zeroed(m):
    for p in m.parameters():
        p.detach().zero_()
    return m


class ResBlock(nn.Module):
    def __init__(self, cin, emb, cout, dropout, groups):
        super().__init__()
        self.in_norm = GroupNorm32(groups, cin)
        self.in_conv = conv3x3(cin, cout)
        self.emb_proj = nn.Linear(emb, 2 * cout)
        self.out_norm = GroupNorm32(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.out_conv = zeroed(conv3x3(cout, cout))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.in_conv(F.silu(self.in_norm(x)))
        e = self.emb_proj(F.silu(emb)).type(h.dtype)[..., None, None]
        scale, shift = e.chunk(2, 1)
        h = self.out_norm(h) * (1 + scale) + shift
        h = self.out_conv(self.dropout(F.silu(h)))
        return (self.skip(x) if self.skip is not None else x) + h


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2: what casdm calls there too
        return F.scaled_dot_product_attention(q, k, v)
    scale = 1 / math.sqrt(math.sqrt(q.shape[-1]))
    w = torch.bmm(q * scale, (k * scale).transpose(1, 2))
    return torch.bmm(torch.softmax(w.float(), -1).type(q.dtype), v)


class AttentionBlock(nn.Module):
    def __init__(self, channels, heads, groups):
        super().__init__()
        self.heads = heads
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        B, C, H, W = x.shape
        L, d = H * W, C // self.heads
        h = self.qkv(self.norm(x).reshape(B, C, L))
        q, k, v = h.reshape(B * self.heads, 3 * d, L).split(d, 1)
        a = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.proj(a.transpose(1, 2).reshape(B, C, L)).reshape(x.shape)


class Stage(nn.Module):
    """A res block, an attention block and a resampling conv, any of them absent."""

    def __init__(self, cin, cout, attn, resample, rch, o):
        super().__init__()
        emb = 4 * o["model_channels"]
        self.res = ResBlock(cin, emb, cout, o["dropout"], o["norm_groups"]) if cout else None
        self.attn = AttentionBlock(cout, o["num_heads"], o["norm_groups"]) if attn else None
        self.resample = resample
        if resample == "down":
            self.down = conv3x3(rch, rch, 2)
        if resample == "up":
            self.up = conv3x3(rch, rch)

    def forward(self, x, emb):
        if self.res is not None:
            x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x)
        if self.resample == "up":
            x = self.up(F.interpolate(x, scale_factor=2, mode="nearest"))
        elif self.resample == "down":
            x = self.down(x)
        return x


class UNet(nn.Module):
    def __init__(self, o, cin, cout):
        super().__init__()
        mc = o["model_channels"]
        self.mc = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, 4 * mc), nn.SiLU(), nn.Linear(4 * mc, 4 * mc))
        self.in_conv = conv3x3(cin, mc)
        self.encoder, self.middle, self.decoder = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        mult, levels = o["channel_mult"], len(o["channel_mult"])

        def attends(level):
            return (o["image_size"] >> level) in o["attention_resolutions"]

        skips, ch = [mc], mc
        for level in range(levels):
            for _ in range(o["num_res_blocks"]):
                self.encoder.append(Stage(ch, mult[level] * mc, attends(level), None, 0, o))
                ch = mult[level] * mc
                skips.append(ch)
            if level + 1 < levels:
                self.encoder.append(Stage(0, 0, False, "down", ch, o))
                skips.append(ch)
        self.middle.append(Stage(ch, ch, True, None, 0, o))
        self.middle.append(Stage(ch, ch, False, None, 0, o))
        for level in reversed(range(levels)):
            for i in range(o["num_res_blocks"] + 1):
                out = mult[level] * mc
                up = level > 0 and i == o["num_res_blocks"]
                self.decoder.append(Stage(ch + skips.pop(), out, attends(level), "up" if up else None, out, o))
                ch = out
        self.out_norm = GroupNorm32(o["norm_groups"], ch)
        self.out_conv = zeroed(conv3x3(ch, cout))

    def forward(self, x, t):
        emb = self.time_embed(timestep_embedding(t, self.mc))
        h = self.in_conv(x)
        skips = [h]
        for m in self.encoder:
            h = m(h, emb)
            skips.append(h)
        for m in self.middle:
            h = m(h, emb)
        for m in self.decoder:
            h = m(torch.cat([h, skips.pop()], 1), emb)
        return self.out_conv(F.silu(self.out_norm(h)))


# ---------------------------------------------------------------------------------------------
# LPIPS with random weights (casdm/metric/lpips.hpp: VGG16 with average pooling, taps relu1_2 …
# relu5_3, unit-normalised features, per-channel weights, spatial mean)

VGG16 = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512]
TAPS = (3, 8, 15, 22, 29)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in VGG16:
            if v == "P":
                layers.append(nn.AvgPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        for i, ch in enumerate((64, 128, 256, 512, 512)):
            self.register_buffer(f"lin{i}", torch.full((1, ch, 1, 1), 1.0 / ch))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def taps(self, x):
        out = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in TAPS:
                out.append(x)
                if i == TAPS[-1]:
                    break
        return out

    def forward(self, a, b):
        fa, fb = self.taps((a - self.mean) / self.std), self.taps((b - self.mean) / self.std)
        total = 0
        for i, (x, y) in enumerate(zip(fa, fb)):
            nx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + ((nx - ny).pow(2) * getattr(self, f"lin{i}")).mean((2, 3)).sum(1)
        return total


def feature_transform(x, size):
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 1) * 0.5
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# ---------------------------------------------------------------------------------------------
# The process (casdm/core/process.hpp: float64 tables, gathered then cast)

def cosine_betas(T):
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float64)


class Process:
    def __init__(self, betas, timestep_map=None, original_T=None):
        self.betas = betas
        self.T = len(betas)
        self.original_T = original_T or self.T
        self.map = timestep_map if timestep_map is not None else torch.arange(self.T)
        ac = torch.cumprod(1 - betas, 0)
        acp = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        self.ac, self.acp = ac, acp
        self.sqrt_ac, self.sqrt_1m_ac = ac.sqrt(), (1 - ac).sqrt()
        self.sqrt_recip_ac, self.sqrt_recipm1_ac = (1 / ac).sqrt(), (1 / ac - 1).sqrt()
        self.coef1 = betas * acp.sqrt() / (1 - ac)
        self.coef2 = (1 - acp) * (1 - betas).sqrt() / (1 - ac)

    def respaced(self, steps):  # "ddimN": the integer stride giving N steps
        for stride in range(1, self.T):
            if len(range(0, self.T, stride)) == steps:
                use = list(range(0, self.T, stride))
                break
        else:
            raise ValueError(f"cannot make {steps} DDIM steps from T = {self.T}")
        betas, last = [], 1.0
        for i in use:
            betas.append(1 - self.ac[i].item() / last)
            last = self.ac[i].item()
        return Process(torch.tensor(betas, dtype=torch.float64), self.map[use], self.original_T)

    def g(self, tab, t, like):
        return tab.to(t.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def model_t(self, t):
        return self.map.to(t.device)[t].float() * (1000.0 / self.original_T)

    def q_sample(self, x0, t, eps):
        return self.g(self.sqrt_ac, t, x0) * x0 + self.g(self.sqrt_1m_ac, t, x0) * eps

    def x0_from_eps(self, x, t, eps):
        return self.g(self.sqrt_recip_ac, t, x) * x - self.g(self.sqrt_recipm1_ac, t, x) * eps

    def eps_from_x0(self, x, t, x0):
        return (self.g(self.sqrt_recip_ac, t, x) * x - x0) / self.g(self.sqrt_recipm1_ac, t, x)

    def posterior_mean(self, x0, x, t):
        return self.g(self.coef1, t, x) * x0 + self.g(self.coef2, t, x) * x

    def ddim_mean(self, t, x0, eps):  # η = 0
        acp = self.g(self.acp, t, x0)
        return acp.sqrt() * x0 + (1 - acp).clamp_min(0).sqrt() * eps


# ---------------------------------------------------------------------------------------------
# The models: DDPM_Eps (θ → ε′) and CasDM (θ → ε′, φ(x0⋆) → [x0′, r]), optionally with LPIPS

class Model(nn.Module):
    def __init__(self, preset, o, feature_size=32):
        super().__init__()
        self.cascaded = preset.startswith("CasDM")
        C = o["channels"]
        self.theta = UNet(o, C, C)
        if self.cascaded:
            self.phi = UNet(o, C, C + 1)
        self.lpips = LPIPS() if preset == "CasDM_LPIPS" else None
        self.feature_size = feature_size
        self.process = Process(cosine_betas(o["T"]))

    def predict(self, p, x, t):
        tm = p.model_t(t)
        eps = self.theta(x, tm)
        if not self.cascaded:
            return dict(eps=eps)
        x0_star = p.x0_from_eps(x, t, eps.detach())
        out = self.phi(x0_star, tm)
        C = x.shape[1]
        return dict(eps=eps, x0_star=x0_star, x0=out[:, :C], r=torch.sigmoid(out[:, C:C + 1]))

    def losses(self, x0, t, noise):
        p = self.process
        x = p.q_sample(x0, t, noise)
        pr = self.predict(p, x, t)
        terms = {"eps": (noise - pr["eps"]).square().mean()}
        if self.cascaded:
            terms["x0"] = (x0 - pr["x0"]).square().mean()
            target = p.posterior_mean(x0, x, t)
            mu = pr["r"] * p.posterior_mean(pr["x0"].detach(), x, t) + (1 - pr["r"]) * p.posterior_mean(
                pr["x0_star"].detach(), x, t)
            terms["mu"] = (target - mu).square().mean()
        if self.lpips is not None:
            fs = self.feature_size
            terms["lpips"] = 0.1 * self.lpips(feature_transform(x0, fs), feature_transform(pr["x0"], fs)).mean()
        return sum(terms.values()), terms

    def denoise(self, p, x, t):  # clipped; the r-mixed estimate on the cascade (casdm/core/estimate.hpp)
        pr = self.predict(p, x, t)
        if not self.cascaded:
            x0 = p.x0_from_eps(x, t, pr["eps"]).clamp(-1, 1)
            return x0, p.eps_from_x0(x, t, x0)
        a = pr["x0"].clamp(-1, 1)
        b = pr["x0_star"].clamp(-1, 1)
        ea, eb = p.eps_from_x0(x, t, a), p.eps_from_x0(x, t, b)
        return torch.lerp(b, a, pr["r"]), torch.lerp(eb, ea, pr["r"])

    @torch.no_grad()
    def ddim(self, x, steps):
        p = self.process.respaced(steps)
        for i in reversed(range(steps)):
            t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
            x0, eps = self.denoise(p, x, t)
            x = p.ddim_mean(t, x0, eps)
        return x.clamp(-1, 1)


class Trainer:
    """casdm::train::Trainer::step's work: draw t and ε, losses, backward, global gradient norm,
    one host sync, AdamW (multi-tensor), EMA (multi-tensor)."""

    def __init__(self, model, lr=1e-3, ema_rate=0.99):
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        kw = dict(foreach=True) if "foreach" in torch.optim.AdamW.__init__.__code__.co_varnames else {}
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.0, **kw)
        self.ema = [p.detach().clone() for p in self.params]
        self.rate = ema_rate

    def step(self, x0):
        m = self.model
        m.train()
        for p in self.params:
            p.grad = None
        t = torch.randint(0, m.process.T, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        total, terms = m.losses(x0, t, noise)
        total.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.stack(torch._foreach_norm(grads)).norm()
        if not bool(torch.isfinite(torch.stack([total.detach(), norm])).all()):
            return total
        self.opt.step()
        with torch.no_grad():
            torch._foreach_mul_(self.ema, self.rate)
            torch._foreach_add_(self.ema, self.params, alpha=1 - self.rate)
        return total


# ---------------------------------------------------------------------------------------------
# FLOP: 2 per multiply-add of every convolution, linear layer and attention product (GroupNorm,
# activations and elementwise ops not counted, as fvcore and PyTorch's FlopCounterMode count)

def count_flops(net, x, t):
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * (m.kernel_size[1] if len(m.kernel_size) > 1 else 1)
        total[0] += 2 * out.numel() // out.shape[0] * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, out):
        total[0] += 2 * m.in_features * m.out_features * (out.numel() // out.shape[0] // m.out_features)

    def attn_hook(m, inp, out):
        B, C, H, W = inp[0].shape
        total[0] += 2 * 2 * (H * W) ** 2 * C  # q·kᵀ and w·v over all heads

    hooks = []
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, AttentionBlock):
            hooks.append(m.register_forward_hook(attn_hook))
    with torch.no_grad():
        net(x[:1], t[:1])
    for h in hooks:
        h.remove()
    return total[0]


def lpips_flops(size):
    net = LPIPS()
    total = [0]

    def conv_hook(m, inp, out):
        total[0] += 2 * out.numel() // out.shape[0] * m.in_channels * 9

    hooks = [m.register_forward_hook(conv_hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net.taps(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total[0]


# ---------------------------------------------------------------------------------------------
# Peak resident memory (Linux): VmHWM reset through /proc/self/clear_refs

def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile(once, args, device):
    """The same per-operator table as casdm_bench_eager --profile (self time per operator)."""
    with torch.autograd.profiler.profile() as prof:
        for _ in range(args.profile):
            once()
            sync(device)
    ops = [e for e in prof.key_averages()]
    total = sum(e.self_cpu_time_total for e in ops)
    calls = sum(e.count for e in ops)
    it = args.profile
    print(f"## PyTorch eager {args.workload}/{args.preset} ({args.config} config, batch {args.batch}, "
          f"{args.threads} thread(s), {args.device})\n")
    print(f"{calls / it:g} operator calls per iteration, {total / it / 1e3:.2f} ms of operator self time per "
          f"iteration\n")
    print("| operator | calls/iter | self ms/iter | self % | total ms/iter |\n|---|---:|---:|---:|---:|")
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:args.top]:
        print(f"| {e.key} | {e.count / it:g} | {e.self_cpu_time_total / it / 1e3:.3f} | "
              f"{100 * e.self_cpu_time_total / max(total, 1e-9):.1f} | {e.cpu_time_total / it / 1e3:.3f} |")
    print()


def time_it(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    o = CONFIGS[args.config]
    base = rss_kib("VmRSS")
    reset_peak()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = Model(args.preset, o, args.feature_size).to(device)
    shape = (args.batch, o["channels"], o["image_size"], o["image_size"])
    x0 = torch.rand(shape, device=device) * 2 - 1
    if args.workload == "train":
        trainer = Trainer(model)
        once = lambda: trainer.step(x0)
    else:
        model.eval()
        noise = torch.randn(shape, device=device)
        once = lambda: model.ddim(noise, args.steps)
    for _ in range(args.warmup):
        once()
    sync(device)
    if args.profile:
        return profile(once, args, device)
    n, t0 = 0, time.perf_counter()
    while n < args.min_iters or time.perf_counter() - t0 < args.min_time:
        once()
        n += 1
        sync(device)
    secs = time.perf_counter() - t0
    peak_mib = (rss_kib("VmHWM") - base) / 1024
    x, t = torch.zeros(1, *shape[1:]), torch.zeros(1)
    f_theta = count_flops(UNet(o, o["channels"], o["channels"]), x, t)
    f_phi = count_flops(UNet(o, o["channels"], o["channels"] + 1), x, t) if model.cascaded else 0
    f_feat = 2 * lpips_flops(args.feature_size) if args.preset == "CasDM_LPIPS" else 0
    # per image: a training step is forward + backward (≈ 2× forward) of the trained networks;
    # the frozen feature network runs forward on both images and backward to one (≈ 3× its forward)
    if args.workload == "train":
        per_image = 3 * (f_theta + f_phi) + 1.5 * f_feat
    else:
        per_image = args.steps * (f_theta + f_phi)
    out = dict(side="pytorch", torch=torch.__version__, workload=args.workload, preset=args.preset,
               config=args.config, batch=args.batch, steps=args.steps, iterations=n,
               ms=1000 * secs / n, peak_mib=peak_mib, flop_theta=f_theta, flop_phi=f_phi,
               flop_per_image=per_image, tflops=per_image * args.batch * n / secs / 1e12)
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# The check the tests run: casdm's weights in the replica give casdm's outputs

def check(folder):
    d = torch.load(os.path.join(folder, "replica.pt"))
    o = dict(CONFIGS["main"])
    model = Model("CasDM", o)
    state = {k[len("model."):]: v for k, v in d.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)  # every name and shape of casdm's CasDM
    model.eval()
    x0, t, noise = d["x0"], d["t"], d["noise"]
    with torch.no_grad():
        total, terms = model.losses(x0, t, noise)
        p = model.process
        pr = model.predict(p, p.q_sample(x0, t, noise), t)
        bad = []
        for k in ("eps", "x0", "r"):
            err = (pr[k] - d["pred." + k]).abs().max().item()
            if err > 2e-5:
                bad.append(f"{k}: max |diff| {err:.3g}")
        for k, v in terms.items():
            err = abs(v.item() - d["loss." + k].item())
            if err > 1e-5 * max(1.0, abs(v.item())):
                bad.append(f"loss {k}: {v.item()} vs casdm {d['loss.' + k].item()}")
        x = model.ddim(d["ddim.noise"], int(d["ddim.steps"].item()))
        err = (x - d["ddim.samples"]).abs().max().item()
        if err > 1e-4:
            bad.append(f"ddim samples: max |diff| {err:.3g}")
    shape = (1, o["channels"], o["image_size"], o["image_size"])
    ft = count_flops(model.theta, torch.zeros(shape), torch.zeros(1))
    fp = count_flops(model.phi, torch.zeros(shape), torch.zeros(1))
    if ft != d["flop.theta"].item() or fp != d["flop.phi"].item():
        bad.append(f"FLOP per image: hooks count theta {ft}, phi {fp}; casdm::net::forward_flops says "
                   f"{d['flop.theta'].item()}, {d['flop.phi'].item()}")
    if bad:
        print("the PyTorch replica differs from casdm:\n  " + "\n  ".join(bad))
        sys.exit(1)
    print(f"replica == casdm (theta {ft} FLOP, phi {fp} FLOP per image)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--workload", choices=["train", "ddim"], required=True)
    t.add_argument("--preset", choices=["DDPM_Eps", "CasDM", "CasDM_LPIPS"], required=True)
    t.add_argument("--config", choices=sorted(CONFIGS), default="main")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--steps", type=int, default=20, help="DDIM steps")
    t.add_argument("--feature-size", type=int, default=32)
    t.add_argument("--threads", type=int, default=os.cpu_count())
    t.add_argument("--device", default="cpu")
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--min-iters", type=int, default=5)
    t.add_argument("--min-time", type=float, default=3.0)
    t.add_argument("--profile", type=int, default=0, help="print the per-operator profile of N iterations instead")
    t.add_argument("--top", type=int, default=25)
    c = sub.add_parser("check")
    c.add_argument("folder")
    a = ap.parse_args()
    if a.cmd == "time":
        time_it(a)
    else:
        check(a.folder)


if __name__ == "__main__":
    main()
