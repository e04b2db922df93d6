import CIFAR
import Cluster
import Foundation
import Models
import Training
import Transport

enum ControlTarget {
    /// The control messages a peer can send, each with the checks its receiver applies.
    enum Kind: UInt8, CaseIterable {
        case hello, setup, ready, step, result, evaluate, evaluation, heartbeat, failure, stop

        /// The wire's kind of each case, in raw-value order: the one table between the two.
        private static let wireKinds: [MessageKind] = [.hello, .setup, .ready, .step, .result, .evaluate, .evaluation, .heartbeat, .failure, .stop]

        init?(_ kind: MessageKind) {
            guard let index = Self.wireKinds.firstIndex(of: kind) else { return nil }
            self.init(rawValue: UInt8(index))
        }

        var messageKind: MessageKind { Self.wireKinds[Int(rawValue)] }

        /// A valid body of this kind (for ResNet-8, 12 iterations, rank 0 of 1).
        var sample: String {
            let sample = #"{"index":3,"augmentation":{"cropX":1,"cropY":6,"flip":true}}"#
            switch self {
            case .hello:
                return #"{"workerID":"w","host":"h","pid":7,"ringEndpoint":"tcp://127.0.0.1:5000","#
                    + #""dataset":{"fingerprint":"f00d","trainImages":50000,"testImages":10000},"#
                    + #""heartbeatToken":"0123456789abcdef0123456789abcdef"}"#
            case .setup:
                let architecture = try! ControlTarget.configuration.architecture()
                let configuration = String(decoding: try! JSONEncoder().encode(ControlTarget.configuration), as: UTF8.self)
                return #"{"nextStep":0,"rank":0,"worldSize":1,"configuration":\#(configuration),"batchNorm":"sync","#
                    + #""ringEndpoints":["tcp://127.0.0.1:5000"],"parameterCount":\#(architecture.parameterCount),"#
                    + #""stateCount":\#(architecture.stateCount),"checkEvery":50}"#
            case .ready: return #"{"completedSteps":0,"parameterHash":"abc"}"#
            case .step: return #"{"step":4,"learningRate":0.1,"globalBatch":128,"samples":[\#(sample),\#(sample)],"reportHash":true}"#
            case .result:
                return #"{"statistics":{"lossSumFixed":12,"correct":1,"images":2,"nonFinite":0},"parameterHash":"abc"}"#
            case .evaluate: return #"{"split":"test","start":0,"end":10}"#
            case .evaluation:
                let confusion = (0..<10).map { $0 == 3 ? "[0,0,0,9,0,0,0,0,0,1]" : "[0,0,0,0,0,0,0,0,0,0]" }.joined(separator: ",")
                return #"{"images":10,"lossSumFixed":5,"wrong":1,"imagesFirst1000":10,"wrongFirst1000":1,"confusion":[\#(confusion)]}"#
            case .heartbeat: return #"{"workerID":"w","token":"0123456789abcdef0123456789abcdef","waiting":true}"#
            case .failure: return #"{"message":"out of memory"}"#
            case .stop: return #"{"reason":"done"}"#
            }
        }
    }

    static let configuration: TrainingConfiguration = {
        var configuration = TrainingConfiguration()
        configuration.depth = 8
        configuration.iterations = 12
        return configuration
    }()

    static func payload(_ json: String) -> [UInt8] {
        withUnsafeBytes(of: UInt32(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8)
    }

    /// Byte 0 picks the kind; the rest is the JSON body.
    static func run(_ input: [UInt8]) throws -> Bool {
        guard let first = input.first else { return false }
        let kind = Kind.allCases[Int(first) % Kind.allCases.count]
        return try check(kind, payload: payload(String(decoding: input.dropFirst(), as: UTF8.self)))
    }

    /// Decodes `payload` as `kind` and applies its receiver's checks: whether it passed them.
    static func check(_ kind: Kind, payload: [UInt8]) throws -> Bool {
        func decoded<T: Decodable>(_ type: T.Type) throws -> T? {
            try refusing(TransportError.self) { try ControlPayload.decode(type, from: payload, source: "fuzz").0 }
        }
        switch kind {
        case .hello: return try decoded(ControlMessage.Hello.self).map { $0.problem(validation: 0) == nil } ?? false
        case .setup: return try decoded(ControlMessage.Setup.self).map { $0.problem(current: nil) == nil } ?? false
        case .ready: return try decoded(ControlMessage.Ready.self).map { $0.problem() == nil } ?? false
        case .step:
            return try decoded(ControlMessage.Step.self).map { $0.problem(configuration: configuration, trainImages: 50_000) == nil } ?? false
        case .result: return try decoded(ControlMessage.Result.self).map { $0.problem(images: 2, hashRequested: true) == nil } ?? false
        case .evaluate: return try decoded(ControlMessage.Evaluate.self).map { $0.problem(setSize: 10_000) == nil } ?? false
        case .evaluation:
            guard let evaluation = try decoded(Evaluation.self), evaluation.problem(range: 0..<10) == nil else { return false }
            // What the coordinator does with accepted evaluations: it must not trap.
            _ = evaluation.merged(with: evaluation).errorFirst1000
            return true
        case .heartbeat: return try decoded(ControlMessage.Heartbeat.self) != nil
        case .failure: return try decoded(ControlMessage.Failure.self) != nil
        case .stop: return try decoded(ControlMessage.Stop.self) != nil
        }
    }

    static func seeds() throws -> [[UInt8]] {
        Kind.allCases.map { [$0.rawValue] + Array($0.sample.utf8) }
    }
}

enum CheckpointTarget {
    /// Bytes 0-1: the header length; then the header JSON and the payload. The file is framed
    /// (magic, version, length, checksum) around them so that mutations reach the contents. Byte
    /// 2 odd: the payload is padded with zeros to the size the header's counts give (up to 4 MB),
    /// so decoding goes on past the size check.
    static func run(_ input: [UInt8]) throws -> Bool {
        guard input.count >= 3 else { return false }
        let headerLength = min(Int(input[0]) | Int(input[1]) << 8, input.count - 3)
        let header = Array(input[3..<(3 + headerLength)])
        var payload = Array(input[(3 + headerLength)...])
        if input[2] & 1 == 1, let counts = try? JSONDecoder().decode(Checkpoint.Header.self, from: Data(header)) {
            let floats = [counts.parameterCount, counts.momentumCount, counts.stateCount]
            if floats.allSatisfy({ (0...(1 << 20)).contains($0) }), floats.reduce(0, +) * 4 <= 4 << 20 {
                payload += [UInt8](repeating: 0, count: max(0, floats.reduce(0, +) * 4 - payload.count))
            }
        }
        var file = Data(Checkpoint.magic)
        file.append(contentsOf: withUnsafeBytes(of: Checkpoint.version.littleEndian) { Array($0) })
        file.append(contentsOf: withUnsafeBytes(of: UInt32(header.count).littleEndian) { Array($0) })
        file.append(contentsOf: header + payload)
        file.append(contentsOf: withUnsafeBytes(of: fnv1a64(file).littleEndian) { Array($0) })
        guard let checkpoint = try refusing(CheckpointError.self, { try Checkpoint.decode(file, source: "fuzz") }) else { return false }
        // Compared as bytes: a payload may hold NaNs, which are never == themselves.
        let encoded = try checkpoint.encoded()
        guard try Checkpoint.decode(encoded, source: "fuzz").encoded() == encoded else {
            throw FuzzFinding("an accepted checkpoint does not survive encoding again")
        }
        return true
    }

    static func seeds() throws -> [[UInt8]] {
        let architecture = try ControlTarget.configuration.architecture()
        let checkpoint = Checkpoint(
            configuration: ControlTarget.configuration, step: 3,
            parameters: [Float](repeating: 0, count: architecture.parameterCount),
            momentum: [Float](repeating: 0, count: architecture.parameterCount),
            state: [Float](repeating: 0, count: architecture.stateCount))
        let file = [UInt8](try checkpoint.encoded())
        let headerLength = Int(file[12]) | Int(file[13]) << 8
        let header = Array(file[16..<(16 + headerLength)])
        let length = [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        return [length + [1] + header, length + [0] + header + [0, 0, 128, 63]]
    }
}

enum SafeTensorsTarget {
    /// The raw file; when it decodes, the model state is imported from it as `import` does.
    static func run(_ input: [UInt8]) throws -> Bool {
        guard let (tensors, _) = try refusing(SafeTensorsError.self, { try SafeTensors.decode(Data(input), source: "fuzz") }) else {
            return false
        }
        guard let depth = try refusing(SafeTensorsError.self, { try WeightsFile.depth(of: tensors) }) else { return false }
        guard let architecture = try refusing(Architecture.Error.self, { try Architecture(depth: depth) }) else { return false }
        return try refusing(SafeTensorsError.self, { try WeightsFile.state(tensors, architecture: architecture) }) != nil
    }

    static func seeds() -> [[UInt8]] {
        let tensors: [SafeTensors.Tensor] = [
            .init(name: "layer1.0.conv1.weight", shape: [2, 2], values: .float32([1, 2, 3, 4])),
            .init(name: "bn1.num_batches_tracked", shape: [], values: .int64([7])),
        ]
        return [[UInt8](SafeTensors.encode(tensors, metadata: ["format": "pt"]))]
    }
}
