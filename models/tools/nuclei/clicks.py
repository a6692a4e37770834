"""Click simulation (shared/docs/interactive-eval.md): interior-most points by Euclidean distance transform
with 1 px background padding; ties -> smallest row, then column (numpy argmax on the row-major array)."""
import numpy as np
from scipy.ndimage import distance_transform_edt


def edt_padded(m):
    """Distance transform of boolean mask m with a 1 px background border (cropped to m's bbox for speed)."""
    d = np.zeros(m.shape, np.float64)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return d
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = np.pad(m[y0:y1, x0:x1], 1)
    d[y0:y1, x0:x1] = distance_transform_edt(sub)[1:-1, 1:-1]
    return d


def first_click(gt):
    d = edt_padded(gt)
    r, c = np.unravel_index(int(np.argmax(d)), d.shape)
    return r, c


def next_click(gt, pred):
    """(row, col, positive) of the corrective click, or None when there is no error."""
    fn = gt & ~pred
    fp = ~gt & pred
    dfn = edt_padded(fn)
    dfp = edt_padded(fp)
    mfn, mfp = dfn.max(), dfp.max()
    if mfn == 0 and mfp == 0:
        return None
    if mfn >= mfp:
        r, c = np.unravel_index(int(np.argmax(dfn)), dfn.shape)
        return r, c, True
    r, c = np.unravel_index(int(np.argmax(dfp)), dfp.shape)
    return r, c, False


def random_interior(d, rng, frac):
    """A random pixel whose distance is at least frac * max (training: users do not click the centre)."""
    m = d.max()
    ys, xs = np.nonzero(d >= max(frac * m, 1e-9))
    i = int(rng.integers(len(ys)))
    return ys[i], xs[i]
