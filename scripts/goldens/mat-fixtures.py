#!/usr/bin/env python3
"""Writes the MAT-file fixtures of src/io/testdata with scipy.io.savemat (Debian's python3-scipy):
vgg-layout-tiny.mat — MatConvNet's `layers` layout (a 1×37 cell of structs name/type/weights/stride; conv layers at
VGG-19's indices with weights {filters [3,3,cin,cout] single, biases [1,cout] single}, 2..5 channels), compressed;
plain.mat — a double matrix, a string, int8 values and a cell, uncompressed.
    /usr/bin/python3 scripts/goldens/mat-fixtures.py
"""
import numpy as np
import scipy.io

rng = np.random.default_rng(1)
chans = [2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5]
idx = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
layers = np.empty((1, 37), dtype=object)
for k in range(37):
    layers[0, k] = {'name': f'relu{k}', 'type': 'relu', 'weights': np.empty((1, 0), dtype=object), 'stride': np.array([[1, 1]])}
for n, (c, k) in enumerate(zip(chans, idx)):
    cin = 3 if n == 0 else chans[n - 1]
    w = np.empty((1, 2), dtype=object)
    w[0, 0] = rng.standard_normal((3, 3, cin, c)).astype(np.float32)
    w[0, 1] = rng.standard_normal((1, c)).astype(np.float32)
    layers[0, k] = {'name': f'conv{n+1}', 'type': 'conv', 'weights': w, 'stride': np.array([[1, 1]])}
meta = {'classes': np.array(['a', 'b'], dtype=object), 'normalization': {'averageImage': np.array([123.68, 116.779, 103.939])}}
scipy.io.savemat('src/io/testdata/vgg-layout-tiny.mat', {'layers': layers, 'meta': meta}, do_compression=True)
scipy.io.savemat('src/io/testdata/plain.mat', {'a': np.arange(6, dtype=np.float64).reshape(2, 3), 's': 'hello',
                 'i8': np.array([[-3, 4]], dtype=np.int8), 'c': np.array([[np.float32(1.5), 'x']], dtype=object)},
                 do_compression=False)
