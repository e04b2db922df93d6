import CIFAR
import Collectives
import TensorCore
import Training

extension Worker {
    /// What this worker computes with, built at its first setup.
    final class Session {
        let runID: UInt64
        let data: CIFAR10
        let replica: Replica
        let ring: ZMQCommunicator
        let sequence = CollectiveSequence()
        let clock = PhaseClock()
        let synchronizer: RingGradientSynchronizer

        init(
            runID: UInt64, setup: ControlMessage.Setup, files: DatasetFiles, threads: Int, ring: ZMQCommunicator,
            profiler: Profiler?
        ) throws {
            self.runID = runID
            self.ring = ring
            data = try CIFAR10.split(files.train, validation: setup.configuration.validation, test: files.test)
            replica = try Replica(
                configuration: setup.configuration, meanImage: data.meanImage, threads: threads, profiler: profiler)
            let allReduce = AllReduce(ring)
            if setup.batchNorm == .sync {
                replica.model.synchronizeBatchNorm(with: RingStatisticsReducer(allReduce, sequence: sequence, clock: clock))
            }
            synchronizer = RingGradientSynchronizer(
                allReduce, sequence: sequence, averagesRunningStatistics: setup.batchNorm == .local,
                overlapsBackward: setup.batchNorm == .local, clock: clock)
        }
    }
}
