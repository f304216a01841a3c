#!/usr/bin/env python3
"""Writes src/io/testdata/legacy.pt: a state dict saved by torch 1.13 in the legacy (pre-1.6) format
(`_use_new_zipfile_serialization=False`), as torchvision's and LPIPS's published weights are, and legacy.json with
its values. Needs Debian's python3-torch:  /usr/bin/python3 scripts/goldens/legacy-torch.py
"""
import collections, json, torch
torch.manual_seed(0)
base = torch.randn(4, 6)
sd = collections.OrderedDict()
sd['conv.weight'] = torch.randn(2, 3, 3, 3)
sd['conv.bias'] = torch.tensor([0.5, -1.5])
sd['ids'] = torch.tensor([3, -7, 2 ** 40], dtype=torch.int64)
sd['half'] = torch.tensor([1.0, -2.5, 0.125], dtype=torch.float16)
sd['view'] = base[1:3]          # shares base's storage, offset 6
sd['t'] = base.t()              # non-contiguous
sd['base'] = base
torch.save({'state_dict': sd, 'epoch': 7}, 'src/io/testdata/legacy.pt', _use_new_zipfile_serialization=False)
json.dump({k: v.float().flatten().tolist() if v.dtype != torch.int64 else v.tolist() for k, v in sd.items()} | {'epoch': 7},
          open('src/io/testdata/legacy.json', 'w'))
