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
