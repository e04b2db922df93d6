import TensorCore

/// Two per-channel sums over an NHWC batch, `sum f` and `sum g`, computed per fixed image group
/// and added in group order, so the result does not depend on the thread count. Each image is
/// summed row by row in Float (32 values) and rows are added in Double.
struct ChannelSums {
    let channels: Int
    private let scratch: UnsafeMutablePointer<SIMD16<Double>>  // [group][2][blocks]
    private static let maxGroups = 8

    init(channels: Int) {
        precondition(channels % 16 == 0, "channels must be a multiple of 16")
        self.channels = channels
        scratch = .allocate(capacity: Self.maxGroups * 2 * (channels / 16))
    }

    func deallocate() { scratch.deallocate() }

    /// `row(image, y, block)` returns the two Float partial sums of one image row for one
    /// 16-channel block.
    func compute(batch: Int, pool: ComputePool,
                 row: (_ image: Int, _ y: Int, _ block: Int) -> (SIMD16<Float>, SIMD16<Float>),
                 height: Int) -> (first: [Double], second: [Double]) {
        let blocks = channels / 16
        let groups = min(batch, Self.maxGroups)
        withoutActuallyEscaping(row) { row in
            let state = UncheckedSendable((scratch, row))
            pool.forEach(groups) { g in
                let (scratch, row) = state.value
                let first = scratch + g * 2 * blocks, second = first + blocks
                for b in 0..<blocks { first[b] = .zero; second[b] = .zero }
                for n in (g * batch / groups)..<((g + 1) * batch / groups) {
                    for b in 0..<blocks {
                        var s = SIMD16<Double>(), q = SIMD16<Double>()
                        for y in 0..<height {
                            let (rs, rq) = row(n, y, b)
                            s += SIMD16<Double>(rs)
                            q += SIMD16<Double>(rq)
                        }
                        first[b] += s
                        second[b] += q
                    }
                }
            }
        }
        var first = [Double](repeating: 0, count: channels), second = first
        for g in 0..<groups {
            for b in 0..<blocks {
                let s = scratch[g * 2 * blocks + b], q = scratch[g * 2 * blocks + blocks + b]
                for j in 0..<16 {
                    first[b * 16 + j] += s[j]
                    second[b * 16 + j] += q[j]
                }
            }
        }
        return (first, second)
    }
}
