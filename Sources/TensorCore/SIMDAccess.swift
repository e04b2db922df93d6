import CMaskBits

/// Unaligned SIMD16 loads and stores through raw pointers: the only memory access the kernels use.
@inlinable @inline(__always)
public func load16(_ pointer: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
public func load16(_ pointer: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
public func store16(_ value: SIMD16<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD16<Float>.self)
}

/// Zeros that out-of-image taps read from, so the convolution loops need no bounds checks
/// inside. Large enough for any channel count the models use.
let zeroRow = FloatStorage(count: 1024)

/// A ReLU mask as 16 bits per vector, lane i in bit i, bit set where the output is <= 0: kept for
/// backward at 1/32 of the memory traffic of the Float values it was taken from.
@inlinable @inline(__always)
public func zeroedBits16(_ values: SIMD16<Float>) -> UInt16 { rddp_bits_not_positive(values) }

/// `values` with the lanes set in `bits` replaced by 0.
@inlinable @inline(__always)
public func zeroingLanes16(_ values: SIMD16<Float>, bits: UInt16) -> SIMD16<Float> { rddp_zero_lanes(values, bits) }
