/// Memory-bound element-wise passes, vectorized and split over images.
public enum ElementWise {
    /// dz = dy where y > 0, else 0.
    public static func reluBackward(outputGradient dy: Tensor, output y: Tensor, into dz: Tensor, pool: ComputePool) {
        let perImage = dy.count / dy.shape[0]
        precondition(perImage % 16 == 0, "element count per image must be a multiple of 16")
        let io = UncheckedSendable((UnsafePointer(dy.pointer), UnsafePointer(y.pointer), dz.pointer))
        pool.forEach(dy.shape[0]) { n in
            let (dy, y, dz) = io.value
            var i = n * perImage
            let end = i + perImage
            while i < end {
                var g = load16(dy + i)
                g.replace(with: 0, where: load16(y + i) .<= 0)
                store16(g, dz + i)
                i += 16
            }
        }
    }
}

/// The paper's option-A shortcut: identity when shapes match; otherwise take every second pixel
/// and pad the channels with zeros on both sides ((Cout - Cin) / 2 each), as the common PyTorch
/// reproductions do.
public enum OptionAShortcut {
    /// y = relu(branch + shortcut(x)).
    public static func addThenReLU(branch: Tensor, shortcut x: Tensor, into y: Tensor, pool: ComputePool) {
        let o = branch.nhwc, i = x.nhwc
        let stride = i.h / o.h, pad = (o.c - i.c) / 2
        let io = UncheckedSendable((UnsafePointer(branch.pointer), UnsafePointer(x.pointer), y.pointer))
        pool.forEach(o.n) { n in
            let (b, x, y) = io.value
            for row in 0..<o.h {
                for col in 0..<o.w {
                    let out = ((n * o.h + row) * o.w + col) * o.c
                    let source = x + ((n * i.h + row * stride) * i.w + col * stride) * i.c
                    if pad == 0 {
                        for c in Swift.stride(from: 0, to: o.c, by: 16) {
                            store16(pointwiseMax(load16(b + out + c) + load16(source + c), .zero), y + out + c)
                        }
                    } else {
                        // The channel shift (8 or 16) need not be a whole vector: scalar, 2 blocks per net.
                        for c in 0..<o.c {
                            let v = b[out + c] + (c >= pad && c < pad + i.c ? source[c - pad] : 0)
                            y[out + c] = max(v, 0)
                        }
                    }
                }
            }
        }
    }

    /// dx += shortcut^T(dz): the identity, or the subsampled, channel-shifted positions.
    public static func addBackward(sumGradient dz: Tensor, into dx: Tensor, pool: ComputePool) {
        let o = dz.nhwc, i = dx.nhwc
        let stride = i.h / o.h, pad = (o.c - i.c) / 2
        let io = UncheckedSendable((UnsafePointer(dz.pointer), dx.pointer))
        pool.forEach(o.n) { n in
            let (dz, dx) = io.value
            for row in 0..<o.h {
                for col in 0..<o.w {
                    let source = dz + ((n * o.h + row) * o.w + col) * o.c + pad
                    let target = dx + ((n * i.h + row * stride) * i.w + col * stride) * i.c
                    if pad == 0 {
                        for c in Swift.stride(from: 0, to: i.c, by: 16) {
                            store16(load16(target + c) + load16(source + c), target + c)
                        }
                    } else {
                        for c in 0..<i.c { target[c] += source[c] }
                    }
                }
            }
        }
    }
}
