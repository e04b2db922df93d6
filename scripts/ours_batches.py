"""Our engine's batches in Python: the same images, crops and flips as `resnet-ddp train` for a
seed, so that PyTorch can train on exactly what our trainer trains on (pytorch-train.py
--batches ours). A port of SplitMix64.swift, EpochSampler.swift, Augmentation.swift and
BatchAssembler.swift; `first_step_matches` in pytorch-train.py checks it against our step-1 loss."""
import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream(*keys):
    """The state of SplitMix64.stream(keys...)."""
    h = 0x6A09E667F3BCC909
    for key in keys:
        h = mix(h ^ mix((key + GOLDEN) & MASK))
    return h


def first_draws(state, count):
    """The first `count` values of the generator with this state."""
    values = []
    for _ in range(count):
        state = (state + GOLDEN) & MASK
        values.append(mix(state))
    return values


class OurBatches:
    """Step k (0-based) takes positions 128k ..< 128(k+1) of the concatenated epoch permutations."""

    def __init__(self, images, seed, batch_size=128):
        self.images, self.seed, self.batch_size = images, seed, batch_size
        self.count = len(images)
        self.cached = None

    def permutation(self, epoch):
        order = list(range(self.count))
        state = stream(self.seed, 0x5E9, epoch)
        for i in range(self.count - 1, 0, -1):
            state = (state + GOLDEN) & MASK
            j = mix(state) % (i + 1)
            order[i], order[j] = order[j], order[i]
        return order

    def samples(self, step):
        result = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch = position // self.count
            if self.cached is None or self.cached[0] != epoch:
                self.cached = (epoch, self.permutation(epoch))
            index = self.cached[1][position % self.count]
            r = first_draws(stream(self.seed, 0xA06, epoch, index), 1)[0]
            result.append((index, r % 9, (r // 9) % 9, (r >> 32) & 1 == 1))
        return result

    def batch(self, step, mean):
        """NCHW float32 inputs and the indices: pixel * float32(1/255) - mean, zero outside the image."""
        scale = np.float32(1 / 255)
        out = np.zeros((self.batch_size, 3, 32, 32), dtype=np.float32)
        indices = []
        columns = np.arange(32)
        for slot, (index, crop_x, crop_y, flip) in enumerate(self.samples(step)):
            indices.append(index)
            image = self.images[index].astype(np.float32) * scale - mean  # [3, 32, 32]
            sx = (31 - columns if flip else columns) + crop_x - 4
            sy = columns + crop_y - 4
            valid_x, valid_y = (sx >= 0) & (sx < 32), (sy >= 0) & (sy < 32)
            rows = image[:, sy[valid_y]][:, :, sx[valid_x]]
            out[slot][np.ix_(np.arange(3), np.nonzero(valid_y)[0], np.nonzero(valid_x)[0])] = rows
        return out, np.array(indices, dtype=np.int64)
