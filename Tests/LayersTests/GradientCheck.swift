import Layers
import TensorCore
import TestSupport
import Testing

/// Central finite differences of L = sum(r * layer(x)) against the layer's backward pass, on
/// sampled input coordinates and parameter coordinates. Losses are summed in Double.
/// A step can cross a ReLU kink somewhere in a block and spoil one difference quotient; such a
/// coordinate is retried with a quarter of the step before it counts as a failure.
struct GradientCheck {
    let layer: any Layer
    let store: ParameterStore
    let inputShape: [Int]
    var epsilon: Float = 1e-2
    var rtol = 2e-2
    var atol = 2e-3

    func run(
        inputSamples: Int = 24, parameterSamples: Int = 24, seed: UInt64 = 11, checkInput: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var rng = SplitMix64(seed: seed)
        let x = Tensor(shape: inputShape, values: (0..<inputShape.reduce(1, *)).map { _ in rng.nextUnitFloat() * 2 - 1 })
        let outputCount = try! layer.forward(x, mode: .training).count
        let r = Tensor(shape: [outputCount], values: (0..<outputCount).map { _ in rng.nextUnitFloat() * 2 - 1 })

        func loss() -> Double {
            let y = try! layer.forward(x, mode: .training)
            var sum = 0.0
            for i in 0..<outputCount { sum += Double(y.pointer[i]) * Double(r.pointer[i]) }
            return sum
        }
        store.zeroGradients()
        let y = try! layer.forward(x, mode: .training)
        let dy = Tensor(shape: y.shape, values: r.toArray())
        let dx = try! layer.backward(dy).toArray()
        store.resolveGradients()
        let dParameters = Array(store.gradients)

        func numeric(_ pointer: UnsafeMutablePointer<Float>, step: Float) -> Double { centralDifference(at: pointer, step: step, loss) }
        func expectClose(_ analytic: Float, _ pointer: UnsafeMutablePointer<Float>, _ what: String) {
            func close(_ numeric: Double) -> Bool { abs(Double(analytic) - numeric) <= atol + rtol * abs(numeric) }
            let coarse = numeric(pointer, step: epsilon)
            if close(coarse) { return }
            let fine = numeric(pointer, step: epsilon / 4)
            #expect(
                close(fine), "\(what): analytic \(analytic), numeric \(coarse) (step \(epsilon)), \(fine) (step \(epsilon / 4))",
                sourceLocation: sourceLocation)
        }
        if checkInput {
            for _ in 0..<inputSamples {
                let i = Int(rng.next() % UInt64(x.count))
                expectClose(dx[i], x.pointer + i, "input[\(i)]")
            }
        }
        for _ in 0..<min(parameterSamples, store.parameterCount) {
            let i = Int(rng.next() % UInt64(store.parameterCount))
            let name = store.views.first { $0.kind == .parameter && i >= $0.offset && i < $0.offset + $0.count }?.name ?? "?"
            expectClose(dParameters[i], store.values.baseAddress! + i, "\(name)[\(i)]")
        }
    }
}
