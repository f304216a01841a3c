"""Regenerate the Pillow crop golden (numpy + Pillow). Spec: ../../../../../shared/spec/pipeline.md §3."""
import numpy as np
from PIL import Image

FACE_SIZE = 194.2749650813705
FACE_CENTER = (251.83270369057132, 280.0133630862363)


def synthetic(w, h, disc):
    y, x = np.mgrid[0:h, 0:w]
    r, g, b = x * 200 // w + 30, y * 180 // h + 40, np.full_like(x, 120)
    cx, cy, rad = disc
    inside = (x - cx) ** 2 + (y - cy) ** 2 < rad * rad
    r, g, b = np.where(inside, 240, r), np.where(inside, 60, g), np.where(inside, 20, b)
    bar = (abs(x - cx) < rad * 0.3) & (abs(y - cy - rad * 0.2) < rad * 0.15)
    r, g, b = np.where(bar, 10, r), np.where(bar, 10, g), np.where(bar, 90, b)
    return Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8))


def similarity_crop(img, box):
    w, h = img.size
    x1, y1, x2, y2 = box
    ratio = FACE_SIZE / (((x2 - x1) + (y2 - y1)) / 2)
    scaled = img.resize((int(w * ratio), int(h * ratio)), Image.BICUBIC)
    cx, cy = int((x1 + x2) / 2 * ratio), int((y1 + y2) / 2 * ratio)
    dx, dy = FACE_CENTER[0] - cx, FACE_CENTER[1] - cy
    region = scaled.crop((int(max(0, -dx)), int(max(0, -dy)),
                          int(min(scaled.width, 512 - dx)), int(min(scaled.height, 512 - dy))))
    out = Image.new('RGB', (512, 512), (255, 255, 255))
    out.paste(region, (int(max(0, dx)), int(max(0, dy))))
    return out


CASES = {
    'enlarge': (320, 256, (150, 120, 50), (105, 75, 195, 170)),
    'shrink': (800, 640, (420, 300, 190), (230, 110, 610, 500)),
}

if __name__ == '__main__':
    for name, (w, h, disc, box) in CASES.items():
        img = synthetic(w, h, disc)
        img.save(f'{name}-input.png', optimize=True)
        similarity_crop(img, box).save(f'{name}-pillow.png', optimize=True)
