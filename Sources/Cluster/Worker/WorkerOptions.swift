import Transport

extension Worker {
    /// What a worker is told on its command line (`resnet-ddp worker`, or `train --workers` for local ones).
    public struct Options: Sendable {
        public var coordinator: String
        public var dataDirectory: String
        public var threads: Int
        /// Host name or address the other workers use to reach this worker's ring socket.
        public var ringHost: String
        /// Longest wait for the coordinator's first answer or for one ring message.
        public var timeout: Double
        /// Exit when this process is gone (set by `train --workers`, so no worker outlives it).
        public var parentPID: Int32?
        public var heartbeatInterval = HeartbeatTiming.interval
        /// Silence from the coordinator after which this worker exits.
        public var heartbeatTimeout: Double = 2
        /// `--inject-faults` spec for this worker's control and ring messages.
        public var injectFaults: String?
        /// Test hook: what to do to this process at one point of one step.
        public var faultPlan: FaultPlan?
        /// CURVE: this worker's key pair and the coordinator's public key.
        public var curve: (keys: CurveKeyPair, coordinatorKey: String)?
        /// Print a phase profile (JSON, on the log) every this many steps; 0: never.
        public var profileEvery = 0
        /// With `profileEvery`: also print each operation's time (the engine's profiler).
        public var profileOperations = false
        /// Microseconds a data-plane receive polls before it sleeps (see `ZMQCommunicator.waitSpinSeconds`).
        public var waitSpinMicroseconds: UInt64 = Worker.Options.defaultWaitSpinMicroseconds
        /// Off: on 2 cores a 300 us spin gained 4-6 % in one quiet window and nothing in later,
        /// longer measurements (docs/performance.md, "Spinning before a data-plane wait").
        public static let defaultWaitSpinMicroseconds: UInt64 = 0
        /// Longer spins only burn the core: a wait that long is a slow peer, not a wake-up.
        public static let maximumWaitSpinMicroseconds: UInt64 = 1_000_000

        public init(
            coordinator: String, dataDirectory: String, threads: Int, ringHost: String, timeout: Double,
            parentPID: Int32?
        ) {
            self.coordinator = coordinator
            self.dataDirectory = dataDirectory
            self.threads = threads
            self.ringHost = ringHost
            self.timeout = timeout
            self.parentPID = parentPID
        }
    }
}
