public enum ClusterError: Error, CustomStringConvertible {
    case datasetMismatch(String)
    case workerFailed(String, String)
    case diverged(String)
    case stateLost(String)
    case noProgress(String)
    case configuration(String)
    case interrupted(String)

    public var description: String {
        switch self {
        case .datasetMismatch(let reason): "workers disagree about the dataset: \(reason)"
        case .workerFailed(let worker, let reason): "\(worker) failed: \(reason)"
        case .diverged(let reason): "replicas diverged: \(reason)"
        case .stateLost(let reason): "the model state is lost: \(reason)"
        case .noProgress(let reason): "no progress: \(reason)"
        case .configuration(let reason): reason
        case .interrupted(let when): "interrupted \(when)"
        }
    }
}
