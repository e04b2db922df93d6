/// The register tiles of the direct 3x3 convolution (see docs/engine.md): up to 16
/// SIMD16 accumulators (output pixels times 16-channel output blocks) stay in registers while
/// every input channel adds `broadcast(x[ci]) * w[tap][ci][block]` to them.
///
/// Every tile adds the same products in the same order, so a pixel's bits never depend on which
/// tile computed it: for each kernel row ky, for each input channel ci, kx = 0, 1, 2 (one fused
/// multiply-add each; `NaiveConvolution.forwardInKernelOrder` in the tests is the scalar spec).
/// Taps outside the image add nothing, which equals adding zeros: an accumulator that starts at
/// +0 never becomes -0.
extension Conv3x3 {
    typealias Accumulators8 = (
        SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>
    )
    typealias Pixels8 = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>
    )

    /// One kernel row (kx = 0, 1, 2) for 16 consecutive pixels of 16 input channels against one
    /// 16-channel block (the 16 -> 16 layers), stride 1. `row` points at the input pixel left of
    /// the tile, `w` at the row's first tap; each input value is broadcast once and feeds the up
    /// to three outputs that read it: 21 loads per 48 FMAs instead of one load per FMA.
    /// `skipFirst` / `skipLast`: the column left / right of the tile is outside the image.
    @inline(__always)
    static func tapRow16x16(
        _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, skipFirst: Bool, skipLast: Bool,
        _ a: inout Accumulators8, _ b: inout Accumulators8
    ) {
        for c in 0..<16 {
            let w0 = load16(w + c * 16), w1 = load16(w + 256 + c * 16), w2 = load16(w + 512 + c * 16)
            var x: SIMD16<Float>
            if !skipFirst { x = SIMD16(repeating: row[c]); a.0.addProduct(x, w0) }
            x = SIMD16(repeating: row[16 + c]); a.1.addProduct(x, w0); a.0.addProduct(x, w1)
            x = SIMD16(repeating: row[32 + c]); a.2.addProduct(x, w0); a.1.addProduct(x, w1); a.0.addProduct(x, w2)
            x = SIMD16(repeating: row[48 + c]); a.3.addProduct(x, w0); a.2.addProduct(x, w1); a.1.addProduct(x, w2)
            x = SIMD16(repeating: row[64 + c]); a.4.addProduct(x, w0); a.3.addProduct(x, w1); a.2.addProduct(x, w2)
            x = SIMD16(repeating: row[80 + c]); a.5.addProduct(x, w0); a.4.addProduct(x, w1); a.3.addProduct(x, w2)
            x = SIMD16(repeating: row[96 + c]); a.6.addProduct(x, w0); a.5.addProduct(x, w1); a.4.addProduct(x, w2)
            x = SIMD16(repeating: row[112 + c]); a.7.addProduct(x, w0); a.6.addProduct(x, w1); a.5.addProduct(x, w2)
            x = SIMD16(repeating: row[128 + c]); b.0.addProduct(x, w0); a.7.addProduct(x, w1); a.6.addProduct(x, w2)
            x = SIMD16(repeating: row[144 + c]); b.1.addProduct(x, w0); b.0.addProduct(x, w1); a.7.addProduct(x, w2)
            x = SIMD16(repeating: row[160 + c]); b.2.addProduct(x, w0); b.1.addProduct(x, w1); b.0.addProduct(x, w2)
            x = SIMD16(repeating: row[176 + c]); b.3.addProduct(x, w0); b.2.addProduct(x, w1); b.1.addProduct(x, w2)
            x = SIMD16(repeating: row[192 + c]); b.4.addProduct(x, w0); b.3.addProduct(x, w1); b.2.addProduct(x, w2)
            x = SIMD16(repeating: row[208 + c]); b.5.addProduct(x, w0); b.4.addProduct(x, w1); b.3.addProduct(x, w2)
            x = SIMD16(repeating: row[224 + c]); b.6.addProduct(x, w0); b.5.addProduct(x, w1); b.4.addProduct(x, w2)
            x = SIMD16(repeating: row[240 + c]); b.7.addProduct(x, w0); b.6.addProduct(x, w1); b.5.addProduct(x, w2)
            x = SIMD16(repeating: row[256 + c]); b.7.addProduct(x, w1); b.6.addProduct(x, w2)
            if !skipLast { x = SIMD16(repeating: row[272 + c]); b.7.addProduct(x, w2) }
        }
    }

    /// One kernel row for 8 consecutive pixels against one 16-channel block (`a`) or, with `pair`,
    /// two (`a`, `b`), stride 1: 10 broadcasts and 3 or 6 weight loads per 24 or 48 FMAs.
    /// Called with literal channel counts where it matters, so every address is a constant offset.
    @inline(__always)
    static func tapRow8(
        _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, inChannels cin: Int, outChannels cout: Int,
        pair: Bool, skipFirst: Bool, skipLast: Bool, _ accumulatorsA: inout Accumulators8, _ accumulatorsB: inout Accumulators8
    ) {
        // Local copies: accumulated through the inout pointers, the sums would stay in memory.
        var a = accumulatorsA, b = accumulatorsB
        defer { accumulatorsA = a; accumulatorsB = b }
        let tap = cin * cout
        for c in 0..<cin {
            let wc = w + c * cout
            let w0 = load16(wc), w1 = load16(wc + tap), w2 = load16(wc + 2 * tap)
            let v0 = pair ? load16(wc + 16) : .zero, v1 = pair ? load16(wc + tap + 16) : .zero
            let v2 = pair ? load16(wc + 2 * tap + 16) : .zero
            var x: SIMD16<Float>
            if !skipFirst {
                x = SIMD16(repeating: row[c]); a.0.addProduct(x, w0)
                if pair { b.0.addProduct(x, v0) }
            }
            x = SIMD16(repeating: row[1 * cin + c]); a.1.addProduct(x, w0); a.0.addProduct(x, w1)
            if pair { b.1.addProduct(x, v0); b.0.addProduct(x, v1) }
            x = SIMD16(repeating: row[2 * cin + c]); a.2.addProduct(x, w0); a.1.addProduct(x, w1); a.0.addProduct(x, w2)
            if pair { b.2.addProduct(x, v0); b.1.addProduct(x, v1); b.0.addProduct(x, v2) }
            x = SIMD16(repeating: row[3 * cin + c]); a.3.addProduct(x, w0); a.2.addProduct(x, w1); a.1.addProduct(x, w2)
            if pair { b.3.addProduct(x, v0); b.2.addProduct(x, v1); b.1.addProduct(x, v2) }
            x = SIMD16(repeating: row[4 * cin + c]); a.4.addProduct(x, w0); a.3.addProduct(x, w1); a.2.addProduct(x, w2)
            if pair { b.4.addProduct(x, v0); b.3.addProduct(x, v1); b.2.addProduct(x, v2) }
            x = SIMD16(repeating: row[5 * cin + c]); a.5.addProduct(x, w0); a.4.addProduct(x, w1); a.3.addProduct(x, w2)
            if pair { b.5.addProduct(x, v0); b.4.addProduct(x, v1); b.3.addProduct(x, v2) }
            x = SIMD16(repeating: row[6 * cin + c]); a.6.addProduct(x, w0); a.5.addProduct(x, w1); a.4.addProduct(x, w2)
            if pair { b.6.addProduct(x, v0); b.5.addProduct(x, v1); b.4.addProduct(x, v2) }
            x = SIMD16(repeating: row[7 * cin + c]); a.7.addProduct(x, w0); a.6.addProduct(x, w1); a.5.addProduct(x, w2)
            if pair { b.7.addProduct(x, v0); b.6.addProduct(x, v1); b.5.addProduct(x, v2) }
            x = SIMD16(repeating: row[8 * cin + c]); a.7.addProduct(x, w1); a.6.addProduct(x, w2)
            if pair { b.7.addProduct(x, v1); b.6.addProduct(x, v2) }
            if !skipLast {
                x = SIMD16(repeating: row[9 * cin + c]); a.7.addProduct(x, w2)
                if pair { b.7.addProduct(x, v2) }
            }
        }
    }

    /// `tapRow8` with the edge flags as literals, so each variant compiles without branches.
    @inline(__always)
    static func tapRow8Edges(
        _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, inChannels cin: Int, outChannels cout: Int,
        pair: Bool, first: Bool, last: Bool, _ a: inout Accumulators8, _ b: inout Accumulators8
    ) {
        switch (first, last) {
        case (true, true):
            tapRow8(row, weights: w, inChannels: cin, outChannels: cout, pair: pair, skipFirst: true, skipLast: true, &a, &b)
        case (true, false):
            tapRow8(row, weights: w, inChannels: cin, outChannels: cout, pair: pair, skipFirst: true, skipLast: false, &a, &b)
        case (false, true):
            tapRow8(row, weights: w, inChannels: cin, outChannels: cout, pair: pair, skipFirst: false, skipLast: true, &a, &b)
        case (false, false):
            tapRow8(row, weights: w, inChannels: cin, outChannels: cout, pair: pair, skipFirst: false, skipLast: false, &a, &b)
        }
    }

    /// One kernel row for 8 output pixels of a stride-2 layer against one or two 16-channel
    /// blocks: the 17 input columns `row[0 ..< 17]` (from the one left of the tile's first input)
    /// are each broadcast once and feed the one or two outputs that read them. `skipFirst`: the
    /// first column is outside the image. (The right edge never is: the width is even.)
    @inline(__always)
    static func tapRow8Stride2(
        _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, inChannels cin: Int, outChannels cout: Int,
        pair: Bool, skipFirst: Bool, _ accumulatorsA: inout Accumulators8, _ accumulatorsB: inout Accumulators8
    ) {
        var a = accumulatorsA, b = accumulatorsB
        defer { accumulatorsA = a; accumulatorsB = b }
        let tap = cin * cout
        for c in 0..<cin {
            let wc = w + c * cout
            let w0 = load16(wc), w1 = load16(wc + tap), w2 = load16(wc + 2 * tap)
            let v0 = pair ? load16(wc + 16) : .zero, v1 = pair ? load16(wc + tap + 16) : .zero
            let v2 = pair ? load16(wc + 2 * tap + 16) : .zero
            var x: SIMD16<Float>
            if !skipFirst {
                x = SIMD16(repeating: row[c]); a.0.addProduct(x, w0)
                if pair { b.0.addProduct(x, v0) }
            }
            x = SIMD16(repeating: row[1 * cin + c]); a.0.addProduct(x, w1)
            if pair { b.0.addProduct(x, v1) }
            x = SIMD16(repeating: row[2 * cin + c]); a.0.addProduct(x, w2); a.1.addProduct(x, w0)
            if pair { b.0.addProduct(x, v2); b.1.addProduct(x, v0) }
            x = SIMD16(repeating: row[3 * cin + c]); a.1.addProduct(x, w1)
            if pair { b.1.addProduct(x, v1) }
            x = SIMD16(repeating: row[4 * cin + c]); a.1.addProduct(x, w2); a.2.addProduct(x, w0)
            if pair { b.1.addProduct(x, v2); b.2.addProduct(x, v0) }
            x = SIMD16(repeating: row[5 * cin + c]); a.2.addProduct(x, w1)
            if pair { b.2.addProduct(x, v1) }
            x = SIMD16(repeating: row[6 * cin + c]); a.2.addProduct(x, w2); a.3.addProduct(x, w0)
            if pair { b.2.addProduct(x, v2); b.3.addProduct(x, v0) }
            x = SIMD16(repeating: row[7 * cin + c]); a.3.addProduct(x, w1)
            if pair { b.3.addProduct(x, v1) }
            x = SIMD16(repeating: row[8 * cin + c]); a.3.addProduct(x, w2); a.4.addProduct(x, w0)
            if pair { b.3.addProduct(x, v2); b.4.addProduct(x, v0) }
            x = SIMD16(repeating: row[9 * cin + c]); a.4.addProduct(x, w1)
            if pair { b.4.addProduct(x, v1) }
            x = SIMD16(repeating: row[10 * cin + c]); a.4.addProduct(x, w2); a.5.addProduct(x, w0)
            if pair { b.4.addProduct(x, v2); b.5.addProduct(x, v0) }
            x = SIMD16(repeating: row[11 * cin + c]); a.5.addProduct(x, w1)
            if pair { b.5.addProduct(x, v1) }
            x = SIMD16(repeating: row[12 * cin + c]); a.5.addProduct(x, w2); a.6.addProduct(x, w0)
            if pair { b.5.addProduct(x, v2); b.6.addProduct(x, v0) }
            x = SIMD16(repeating: row[13 * cin + c]); a.6.addProduct(x, w1)
            if pair { b.6.addProduct(x, v1) }
            x = SIMD16(repeating: row[14 * cin + c]); a.6.addProduct(x, w2); a.7.addProduct(x, w0)
            if pair { b.6.addProduct(x, v2); b.7.addProduct(x, v0) }
            x = SIMD16(repeating: row[15 * cin + c]); a.7.addProduct(x, w1)
            if pair { b.7.addProduct(x, v1) }
            x = SIMD16(repeating: row[16 * cin + c]); a.7.addProduct(x, w2)
            if pair { b.7.addProduct(x, v2) }
        }
    }

    /// The general tile, any stride and pixel count: `q.kx.p` points at the input pixel that
    /// output pixel p reads through tap kx (a zero row where that is outside the image or p is
    /// past the tile), `w` at the kernel row's first tap, blocks as in `tapRow8`.
    @inline(__always)
    static func tapRow8General(
        _ q: (Pixels8, Pixels8, Pixels8), weights w: UnsafePointer<Float>, inChannels cin: Int, outChannels cout: Int,
        pair: Bool, _ accumulatorsA: inout Accumulators8, _ accumulatorsB: inout Accumulators8
    ) {
        var a = accumulatorsA, b = accumulatorsB
        defer { accumulatorsA = a; accumulatorsB = b }
        let tap = cin * cout
        for c in 0..<cin {
            let wc = w + c * cout
            var wa: SIMD16<Float>, wb: SIMD16<Float>, x: SIMD16<Float>
            wa = load16(wc); wb = pair ? load16(wc + 16) : .zero
            x = SIMD16(repeating: q.0.0[c]); a.0.addProduct(x, wa); if pair { b.0.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.1[c]); a.1.addProduct(x, wa); if pair { b.1.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.2[c]); a.2.addProduct(x, wa); if pair { b.2.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.3[c]); a.3.addProduct(x, wa); if pair { b.3.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.4[c]); a.4.addProduct(x, wa); if pair { b.4.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.5[c]); a.5.addProduct(x, wa); if pair { b.5.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.6[c]); a.6.addProduct(x, wa); if pair { b.6.addProduct(x, wb) }
            x = SIMD16(repeating: q.0.7[c]); a.7.addProduct(x, wa); if pair { b.7.addProduct(x, wb) }
            wa = load16(wc + tap); wb = pair ? load16(wc + tap + 16) : .zero
            x = SIMD16(repeating: q.1.0[c]); a.0.addProduct(x, wa); if pair { b.0.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.1[c]); a.1.addProduct(x, wa); if pair { b.1.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.2[c]); a.2.addProduct(x, wa); if pair { b.2.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.3[c]); a.3.addProduct(x, wa); if pair { b.3.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.4[c]); a.4.addProduct(x, wa); if pair { b.4.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.5[c]); a.5.addProduct(x, wa); if pair { b.5.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.6[c]); a.6.addProduct(x, wa); if pair { b.6.addProduct(x, wb) }
            x = SIMD16(repeating: q.1.7[c]); a.7.addProduct(x, wa); if pair { b.7.addProduct(x, wb) }
            wa = load16(wc + 2 * tap); wb = pair ? load16(wc + 2 * tap + 16) : .zero
            x = SIMD16(repeating: q.2.0[c]); a.0.addProduct(x, wa); if pair { b.0.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.1[c]); a.1.addProduct(x, wa); if pair { b.1.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.2[c]); a.2.addProduct(x, wa); if pair { b.2.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.3[c]); a.3.addProduct(x, wa); if pair { b.3.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.4[c]); a.4.addProduct(x, wa); if pair { b.4.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.5[c]); a.5.addProduct(x, wa); if pair { b.5.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.6[c]); a.6.addProduct(x, wa); if pair { b.6.addProduct(x, wb) }
            x = SIMD16(repeating: q.2.7[c]); a.7.addProduct(x, wa); if pair { b.7.addProduct(x, wb) }
        }
    }
}

/// Channel counts as types, so that a generic tile function is compiled once per layer kind with
/// literal counts (constant address offsets, no branches on `pair`). Swift's inliner gives up on
/// the large per-image closure, so literal arguments alone would not reach the kernels.
protocol TileChannels {
    static var inChannels: Int { get }
    static var outChannels: Int { get }
}

enum Channels16x32: TileChannels { static var inChannels: Int { 16 }; static var outChannels: Int { 32 } }
enum Channels32x32: TileChannels { static var inChannels: Int { 32 }; static var outChannels: Int { 32 } }
enum Channels32x64: TileChannels { static var inChannels: Int { 32 }; static var outChannels: Int { 64 } }
enum Channels64x64: TileChannels { static var inChannels: Int { 64 }; static var outChannels: Int { 64 } }

extension Conv3x3 {
    /// `tapRow8Edges` with two blocks and `C`'s channel counts.
    @inline(never)
    static func tapRow8Pair<C: TileChannels>(
        _: C.Type, _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, first: Bool, last: Bool,
        _ a: inout Accumulators8, _ b: inout Accumulators8
    ) {
        tapRow8Edges(
            row, weights: w, inChannels: C.inChannels, outChannels: C.outChannels, pair: true,
            first: first, last: last, &a, &b)
    }

    /// `tapRow8Stride2` with two blocks and `C`'s channel counts.
    @inline(never)
    static func tapRow8Stride2Pair<C: TileChannels>(
        _: C.Type, _ row: UnsafePointer<Float>, weights w: UnsafePointer<Float>, first: Bool,
        _ a: inout Accumulators8, _ b: inout Accumulators8
    ) {
        if first {
            tapRow8Stride2(row, weights: w, inChannels: C.inChannels, outChannels: C.outChannels, pair: true, skipFirst: true, &a, &b)
        } else {
            tapRow8Stride2(row, weights: w, inChannels: C.inChannels, outChannels: C.outChannels, pair: true, skipFirst: false, &a, &b)
        }
    }
}
