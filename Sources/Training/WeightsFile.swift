import Foundation
import Layers
import Models
import TensorCore

/// A trained net as safetensors under the names and layouts of PyTorch's module
/// (`scripts/torch_resnet.py`): convolution weights [out][in][ky][kx] (ours are [ky][kx][in][out]),
/// batch-norm running statistics and `num_batches_tracked`, so that `load_state_dict(strict=True)`
/// takes it once the extra `input_mean` tensor (the per-pixel training mean, [3][32][32], pixels
/// in [0, 1]) is popped.
public enum WeightsFile {
    public static let inputMeanName = "input_mean"

    /// Names, layout positions and PyTorch shapes of `architecture`'s tensors, in forward order.
    struct Slot {
        let view: ParameterView
        let shape: [Int]
        /// For a convolution weight: (in, out) channels, to transpose.
        let convolution: (inChannels: Int, outChannels: Int)?
    }

    static func slots(_ architecture: Architecture) -> [Slot] {
        let model = ResNet(architecture, seed: 0, pool: ComputePool(threads: 1))
        var convolutions = architecture.convolutions.makeIterator()
        return model.store.views.map { view in
            if view.name.hasSuffix(".weight") && view.count % 9 == 0 && view.name.contains("conv") {
                let spec = convolutions.next()!
                return Slot(view: view, shape: [spec.outChannels, spec.inChannels, 3, 3], convolution: (spec.inChannels, spec.outChannels))
            }
            if view.name == "fc.weight" {
                return Slot(view: view, shape: [Architecture.classes, view.count / Architecture.classes], convolution: nil)
            }
            return Slot(view: view, shape: [view.count], convolution: nil)
        }
    }

    /// The file's tensors for `state` (parameters and running statistics) after `steps` steps.
    public static func tensors(_ state: ModelState, architecture: Architecture, steps: Int, meanImage: [Float]) -> [SafeTensors.Tensor] {
        var tensors: [SafeTensors.Tensor] = []
        for slot in slots(architecture) {
            let source = slot.view.kind == .parameter ? state.parameters : state.state
            var values = Array(source[slot.view.offset..<(slot.view.offset + slot.view.count)])
            if let (ci, co) = slot.convolution {
                values = (0..<(co * ci * 9)).map { i in
                    let o = i / (ci * 9), c = (i / 9) % ci, tap = i % 9
                    return values[(tap * ci + c) * co + o]
                }
            }
            tensors.append(.init(name: slot.view.name, shape: slot.shape, values: .float32(values)))
            if slot.view.name.hasSuffix(".running_var") {
                let layer = String(slot.view.name.dropLast(".running_var".count))
                tensors.append(.init(name: layer + ".num_batches_tracked", shape: [], values: .int64([Int64(steps)])))
            }
        }
        let pixels = Architecture.imageSize * Architecture.imageSize
        let chw = (0..<(3 * pixels)).map { i in meanImage[(i % pixels) * 3 + i / pixels] }
        tensors.append(.init(name: inputMeanName, shape: [3, Architecture.imageSize, Architecture.imageSize], values: .float32(chw)))
        return tensors
    }

    /// The parameters and running statistics in `tensors` for `architecture` (momentum zero).
    /// Every tensor must be there with its shape; `num_batches_tracked` and `input_mean` may be absent.
    public static func state(_ tensors: [SafeTensors.Tensor], architecture: Architecture) throws -> ModelState {
        var byName = [String: SafeTensors.Tensor]()
        for tensor in tensors { byName[tensor.name] = tensor }
        var parameters = [Float](repeating: 0, count: architecture.parameterCount)
        var statistics = [Float](repeating: 0, count: architecture.stateCount)
        var expected = Set([inputMeanName])
        for slot in slots(architecture) {
            expected.insert(slot.view.name)
            if slot.view.name.hasSuffix(".running_var") {
                expected.insert(String(slot.view.name.dropLast(".running_var".count)) + ".num_batches_tracked")
            }
            guard let tensor = byName[slot.view.name] else { throw SafeTensorsError.mismatch("\(architecture) needs tensor '\(slot.view.name)'") }
            guard tensor.shape == slot.shape, case .float32(var values) = tensor.values else {
                throw SafeTensorsError.mismatch(
                    "'\(slot.view.name)' has shape \(tensor.shape) (\(tensor.values.dtype)); "
                        + "\(architecture) needs \(slot.shape) (F32)")
            }
            if let (ci, co) = slot.convolution {
                let pytorch = values
                values = (0..<(co * ci * 9)).map { i in
                    let tap = i / (ci * co), c = (i / co) % ci, o = i % co
                    return pytorch[(o * ci + c) * 9 + tap]
                }
            }
            if slot.view.kind == .parameter {
                parameters.replaceSubrange(slot.view.offset..<(slot.view.offset + slot.view.count), with: values)
            } else {
                statistics.replaceSubrange(slot.view.offset..<(slot.view.offset + slot.view.count), with: values)
            }
        }
        if let extra = byName.keys.sorted().first(where: { !expected.contains($0) }) {
            throw SafeTensorsError.mismatch("tensor '\(extra)' is not part of \(architecture)")
        }
        return ModelState(parameters: parameters, momentum: [Float](repeating: 0, count: architecture.parameterCount), state: statistics)
    }

    /// The depth that the blocks in `tensors` imply (`layer1.N.conv1.weight` for N < n).
    public static func depth(of tensors: [SafeTensors.Tensor]) throws -> Int {
        let blocks = Set(
            tensors.compactMap { tensor -> Int? in
                let parts = tensor.name.split(separator: ".")
                return parts.count >= 3 && parts[0] == "layer1" ? Int(parts[1]) : nil
            })
        guard let last = blocks.max(), blocks.count == last + 1, last < 200 else {
            throw SafeTensorsError.mismatch("no consistent layer1.N blocks: not a CIFAR ResNet of this project's shape")
        }
        return 6 * (last + 1) + 2
    }
}
