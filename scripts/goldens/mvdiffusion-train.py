#!/usr/bin/env python3
"""Writes src/train/mvdiffusion/testdata/numerics.json: the training numerics of FaceLift's train_diffusion.py,
computed by Debian's torch 1.13 with the formulas as the reference and diffusers 0.30 write them (diffusers itself
is not installed; the few lines used are re-typed from its sources):
  - the DDPM/DDIM training schedule (scaled_linear 0.00085..0.012, 1000 steps) → alphas_cumprod, compute_snr,
    min-SNR weights min(snr, gamma)/snr (the reference) and min(snr, gamma)/(snr + 1) (v-prediction corrected);
  - the per-sample weighted MSE loss (mean over C, H, W; × weight; mean over items);
  - drop_as_a_whole masks for chosen random_p values (rate 0.05);
  - diffusers' EMAModel.step over 14 updates of three tensors (decay 0.9999, warm-up (1+n)/(10+n));
  - get_piecewise_constant_schedule for two rule strings;
  - the CLIP input resize (bicubic, antialiased) down 20→7 and up 5→9.
    /usr/bin/python3 scripts/goldens/mvdiffusion-train.py
"""
import json
import torch

torch.manual_seed(1234)
out = {}

betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)


def compute_snr(timesteps):
    sqrt_alphas_cumprod = alphas_cumprod ** 0.5
    sqrt_one_minus_alphas_cumprod = (1.0 - alphas_cumprod) ** 0.5
    alpha = sqrt_alphas_cumprod[timesteps].float()
    sigma = sqrt_one_minus_alphas_cumprod[timesteps].float()
    return (alpha / sigma) ** 2


ts = torch.tensor([0, 1, 2, 10, 50, 100, 250, 400, 500, 750, 900, 999], dtype=torch.long)
snr = compute_snr(ts)
gamma = 5.0
w_ref = torch.stack([snr, gamma * torch.ones_like(ts)], dim=1).min(dim=1)[0] / snr
w_v = torch.stack([snr, gamma * torch.ones_like(ts)], dim=1).min(dim=1)[0] / (snr + 1)
out['snr'] = {'timesteps': ts.tolist(), 'alphas_cumprod': alphas_cumprod[ts].tolist(), 'snr': snr.tolist(),
              'weight_reference': w_ref.tolist(), 'weight_v_corrected': w_v.tolist()}

# Loss: 2 objects x 3 views, latents [6, 4, 5, 5], one timestep per object.
pred = torch.randn(6, 4, 5, 5)
target = torch.randn(6, 4, 5, 5)
t_obj = torch.tensor([37, 812])
t_items = t_obj.repeat_interleave(3)
s = compute_snr(t_items)
weights = torch.stack([s, gamma * torch.ones_like(t_items)], dim=1).min(dim=1)[0] / s
loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction='none')
loss = loss.mean(dim=list(range(1, len(loss.shape)))) * weights
out['loss'] = {'pred': pred.flatten().tolist(), 'target': target.flatten().tolist(), 'shape': [6, 4, 5, 5],
               'views': 3, 'timesteps': t_obj.tolist(), 'loss': loss.mean().item()}

# drop_as_a_whole with rate 0.05 (the masks as the reference builds them).
rate = 0.05
p = torch.tensor([0.0, 0.0499999, 0.05, 0.0999999, 0.1, 0.149999, 0.15, 0.1500001, 0.5, 0.999], dtype=torch.float32)
image_mask = 1 - ((p >= rate).float() * (p < 3 * rate).float())
clip_mask = 1 - (p < 2 * rate).float()
out['dropout'] = {'rate': rate, 'p': p.tolist(), 'latent_keep': image_mask.tolist(), 'clip_keep': clip_mask.tolist()}

# diffusers EMAModel.step (defaults: decay 0.9999, min_decay 0, update_after_step 0, no ema warm-up).
def get_decay(optimization_step, decay=0.9999, min_decay=0.0, update_after_step=0):
    step = max(0, optimization_step - update_after_step - 1)
    if step <= 0:
        return 0.0
    cur = (1 + step) / (10 + step)
    cur = min(cur, decay)
    return max(cur, min_decay)

params = [torch.randn(7), torch.randn(3, 4), torch.randn(5)]
shadow = [q.clone() for q in params]
traj, decays, initial = [], [], [q.flatten().tolist() for q in params]
updates = []
for k in range(1, 15):
    upd = [torch.randn_like(q) * 0.1 for q in params]
    for q, u in zip(params, upd):
        q.add_(u)
    decay = get_decay(k)
    one_minus_decay = 1 - decay
    for sp, q in zip(shadow, params):
        sp.sub_(one_minus_decay * (sp - q))
    updates.append([u.flatten().tolist() for u in upd])
    traj.append([sp.flatten().tolist() for sp in shadow])
    decays.append(decay)
out['ema'] = {'initial': initial, 'updates': updates, 'shadow': traj, 'decay': decays}

def piecewise(step_rules):
    rules = {}
    rule_list = step_rules.split(',')
    for r in rule_list[:-1]:
        v, st = r.split(':')
        rules[int(st)] = float(v)
    last = float(rule_list[-1])
    def f(steps):
        for st in sorted(rules.keys()):
            if steps < st:
                return rules[st]
        return last
    return f

out['piecewise'] = [{'rules': r, 'steps': list(range(0, 12)) + [199999, 200000, 200001],
                     'multiplier': [piecewise(r)(k) for k in list(range(0, 12)) + [199999, 200000, 200001]]}
                    for r in ['1:200000,0.5', '1:3,0.5:6,0.1:9,0.01']]

# The CLIP input resize: torchvision >= 0.17's TF.resize on a float tensor = interpolate(bicubic, antialias=True).
img = torch.rand(1, 3, 20, 20)
down = torch.nn.functional.interpolate(img, size=(7, 7), mode='bicubic', antialias=True, align_corners=False)
small = torch.rand(1, 3, 5, 5)
up = torch.nn.functional.interpolate(small, size=(9, 9), mode='bicubic', antialias=True, align_corners=False)
out['resize'] = {'down_in': img.flatten().tolist(), 'down_out': down.flatten().tolist(),
                 'up_in': small.flatten().tolist(), 'up_out': up.flatten().tolist()}

json.dump(out, open('src/train/mvdiffusion/testdata/numerics.json', 'w'))
print('wrote src/train/mvdiffusion/testdata/numerics.json')
