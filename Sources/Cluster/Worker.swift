import CIFAR
import Collectives
import Foundation
import Training
import Transport

/// A worker process: joins a coordinator, receives its rank, configuration and the model state,
/// then computes its share of every step with the same engine as single-process training and
/// all-reduces gradients (and batch-norm statistics) with its ring neighbours.
public final class Worker {
    public struct Options: Sendable {
        public var coordinator: String
        public var dataDirectory: String
        public var threads: Int
        /// Host name or address the other workers use to reach this worker's ring socket.
        public var ringHost: String
        /// Longest wait for the coordinator (between commands) or a ring neighbour.
        public var timeout: Double
        /// Exit when this process is gone (set by `train --workers`, so no worker outlives it).
        public var parentPID: Int32?

        public init(coordinator: String, dataDirectory: String, threads: Int, ringHost: String, timeout: Double,
                    parentPID: Int32?) {
            self.coordinator = coordinator
            self.dataDirectory = dataDirectory
            self.threads = threads
            self.ringHost = ringHost
            self.timeout = timeout
            self.parentPID = parentPID
        }
    }

    private let options: Options
    private let log: (String) -> Void

    public init(options: Options, log: @escaping (String) -> Void) {
        self.options = options
        self.log = log
    }

    /// Runs until the coordinator says stop. Throws with a clear reason otherwise.
    public func run() throws {
        let files = try DatasetFiles.load(directory: options.dataDirectory)
        let context = try ZMQContext()
        let ringSocket = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        let ringEndpoint = try ringSocket.bind("tcp://\(options.ringHost):*")
        let control = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 2000)
        let workerID = UUID().uuidString
        try control.setRoutingID(Array(workerID.utf8))
        try control.connect(options.coordinator)
        var channel = ControlChannel(socket: control, runID: 0, sender: -1, peerName: "coordinator \(options.coordinator)")
        let hello = ControlMessage.Hello(workerID: workerID, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                                         ringEndpoint: ringEndpoint, dataset: files.info)
        try channel.send(.hello, hello)
        log("worker \(workerID.prefix(8)): joined \(options.coordinator), ring endpoint \(ringEndpoint)")

        // C: setup.
        let setupMessage = try receive(control, expecting: .setup, runID: nil)
        let (setup, binary) = try setupMessage.body(ControlMessage.Setup.self, source: "coordinator")
        channel = ControlChannel(socket: control, runID: setupMessage.message.header.runID, sender: Int32(setup.rank),
                                 peerName: "coordinator \(options.coordinator)")
        let state = try FloatCoding.state(binary, parameterCount: setup.parameterCount, stateCount: setup.stateCount,
                                          source: "coordinator")
        let data = try CIFAR10.split(files.train, validation: setup.configuration.validation, test: files.test)
        let replica = try Replica(configuration: setup.configuration, meanImage: data.meanImage, threads: options.threads)
        try replica.load(state)
        let ring = try ZMQRingCommunicator(context: context, rank: setup.rank, size: setup.worldSize, runID: channel.runID,
                                           incoming: ringSocket,
                                           nextEndpoint: setup.ringEndpoints[(setup.rank + 1) % setup.worldSize],
                                           timeout: options.timeout, log: log)
        defer { ring.close() }
        let sequence = CollectiveSequence()
        let allReduce = RingAllReduce(ring)
        if setup.batchNorm == .sync {
            replica.model.synchronizeBatchNorm(with: RingStatisticsReducer(allReduce, sequence: sequence))
        }
        let synchronizer = RingGradientSynchronizer(allReduce, sequence: sequence,
                                                    averagesRunningStatistics: setup.batchNorm == .local)
        try channel.send(.ready, ControlMessage.Empty())
        log("worker rank \(setup.rank)/\(setup.worldSize): ready (\(setup.configuration.depth) layers, "
            + "batch norm \(setup.batchNorm.rawValue), \(options.threads) threads)")

        // E-H: commands until stop.
        while true {
            let received = try receive(control, expecting: nil, runID: channel.runID)
            let header = received.message.header
            do {
                switch header.kind {
                case .step:
                    let (command, _) = try received.body(ControlMessage.Step.self, source: "coordinator")
                    ring.step = UInt64(command.step)
                    sequence.reset()
                    for sample in command.samples where sample.index < 0 || sample.index >= data.train.count {
                        throw TransportError.malformed("step \(command.step) names image \(sample.index) of \(data.train.count)")
                    }
                    let statistics = try replica.step(on: data.train, samples: command.samples, globalBatch: command.globalBatch,
                                                      learningRate: command.learningRate, synchronizer: synchronizer)
                    let result = ControlMessage.Result(statistics: statistics,
                                                       parameterHash: command.reportHash ? hex(replica.parameterHash) : nil)
                    try channel.send(.result, result, step: command.step)
                case .evaluate:
                    let (command, _) = try received.body(ControlMessage.Evaluate.self, source: "coordinator")
                    let set = command.split == .test ? data.test : data.validation
                    guard let set, command.start >= 0, command.start <= command.end, command.end <= set.count else {
                        throw TransportError.malformed("evaluation range \(command.start)..<\(command.end) of \(command.split)")
                    }
                    try channel.send(.evaluation, try replica.evaluate(set, range: command.start..<command.end))
                case .stateRequest:
                    try channel.send(.state, ControlMessage.Empty(), binary: FloatCoding.bytes(replica.state()))
                case .stop:
                    let (stop, _) = try received.body(ControlMessage.Stop.self, source: "coordinator")
                    log("worker rank \(setup.rank): stopping (\(stop.reason))")
                    try? channel.send(.stop, ControlMessage.Empty())
                    return
                default:
                    log("worker rank \(setup.rank): ignored unexpected \(header.kind) from the coordinator")
                }
            } catch {
                try? channel.send(.failure, ControlMessage.Failure(message: "rank \(setup.rank): \(error)"))
                throw error
            }
        }
    }

    /// The next valid control message (of `kind` if given). Malformed or foreign messages are
    /// logged and dropped; waiting is bounded by `options.timeout` and by the parent's life.
    private func receive(_ socket: ZMQSocket, expecting kind: MessageKind?, runID: UInt64?) throws -> Received {
        let deadline = monotonicSeconds() + options.timeout
        while true {
            if let parent = options.parentPID, kill(parent, 0) != 0 {
                throw WorkerError.parentGone(parent)
            }
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { throw TransportError.timeout("the coordinator \(options.coordinator)", seconds: options.timeout) }
            guard let frames = try socket.receive(timeout: min(remaining, 1)) else { continue }
            do {
                guard frames.count == 1 else { throw TransportError.malformed("\(frames.count) frames from the coordinator") }
                let message = try WireMessage.decode(frames[0], from: "coordinator")
                if let runID, message.header.runID != runID {
                    throw TransportError.unexpected("message of another run (\(hex(message.header.runID)))")
                }
                if let kind, message.header.kind != kind {
                    throw TransportError.unexpected("\(message.header.kind) while waiting for \(kind)")
                }
                return Received(identity: [], message: message)
            } catch let error as TransportError {
                log("worker: dropped a control message: \(error)")
            }
        }
    }
}

public enum WorkerError: Error, CustomStringConvertible {
    case parentGone(Int32)
    public var description: String {
        switch self {
        case .parentGone(let pid): "the launching process \(pid) is gone; exiting"
        }
    }
}
