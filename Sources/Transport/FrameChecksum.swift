/// A fast 64-bit checksum (corruption detection, not security): four independent lanes over
/// 32-byte blocks, so it runs at several GB/s.
public func wireChecksum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { wireChecksum($0) } }

public func wireChecksum(_ raw: UnsafeRawBufferPointer) -> UInt64 {
    @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let x = h ^ (w &* 0xBF58_476D_1CE4_E5B9)
        return (x << 29 | x >> 35) &* 0x94D0_49BB_1331_11EB
    }
    var h0: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.count), h1 = h0 &+ 1, h2 = h0 &+ 2, h3 = h0 &+ 3
    let blocks = raw.count / 32
    for i in 0..<blocks {
        let o = i * 32
        h0 = mix(h0, raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))
        h1 = mix(h1, raw.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self))
        h2 = mix(h2, raw.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self))
        h3 = mix(h3, raw.loadUnaligned(fromByteOffset: o + 24, as: UInt64.self))
    }
    var h = mix(mix(mix(h0, h1), h2), h3)
    for i in (blocks * 32)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x0000_0100_0000_01B3 }
    h ^= h >> 31
    return h &* 0xD6E8_FEB8_6659_FD93
}
