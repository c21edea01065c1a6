"""Fixed per-image feature maps and transforms."""

import numpy as np

from pipeline.learners.features import deskew, hog, multi_hog, rotate


def _skew(image):
    ys, xs = np.nonzero(image)
    w = image[ys, xs].astype(float)
    cy, cx = np.average(ys, weights=w), np.average(xs, weights=w)
    return np.average((ys - cy) * (xs - cx), weights=w) / np.average((ys - cy) ** 2, weights=w)


def test_deskew_straightens_a_slanted_stroke_and_centres_it():
    image = np.zeros((28, 28), np.uint8)
    for y in range(4, 24):
        x = 6 + (y - 4) // 2  # a stroke leaning right, off centre
        image[y, x:x + 3] = 255
    out = deskew(image[None])[0]
    assert abs(_skew(image)) > 0.4 and abs(_skew(out)) < 0.05
    ys, xs = np.nonzero(out)
    assert abs(np.average(xs, weights=out[ys, xs]) - 13.5) < 0.5
    colour = deskew(np.repeat(image[None, :, :, None], 3, axis=3))
    assert colour.shape == (1, 28, 28, 3) and (colour[0, :, :, 1] == out).all()


def test_rotate():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 9, 9), dtype=np.uint8)
    assert (rotate(images, 0) == images).all()
    assert (rotate(images, 90) == np.rot90(images, k=1, axes=(1, 2))).all()  # counter-clockwise as displayed


def test_transforms_are_per_image():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    for transform in (deskew, lambda x: rotate(x, 10), lambda x: multi_hog(x, (4, 7))):
        together = transform(images)
        assert all(np.array_equal(together[i], transform(images[i:i + 1])[0]) for i in range(0, 20, 7))


def test_hog_shape_and_normalisation():
    images = np.random.default_rng(2).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    f = hog(images, cell=7, orientations=9, block=2)
    assert f.shape == (4, 3 * 3 * 4 * 9) and f.dtype == np.float64
    blocks = f.reshape(4, 9, 36)
    assert np.allclose(np.linalg.norm(blocks, axis=2), 1, atol=1e-3) and (blocks >= 0).all()
