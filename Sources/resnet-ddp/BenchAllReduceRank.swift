import ArgumentParser
import Cluster
import Collectives
import Foundation

/// `bench --allreduce --allreduce-rank R --allreduce-endpoints ...`: one rank per process.
extension Bench {
    /// 129 is one 64-channel batch-norm layer's statistics (synchronized batch norm); the others
    /// are ResNet-20's and ResNet-110's gradients.
    func parsedAllReduceElements() throws -> [Int] {
        let sizes = try allreduceElements.split(separator: ",").map {
            guard let n = Int($0), (1...(1 << 26)).contains(n) else {
                throw ValidationError("--allreduce-elements: '\($0)' is not a size from 1 to \(1 << 26)")
            }
            return n
        }
        guard !sizes.isEmpty else { throw ValidationError("--allreduce-elements needs a value") }
        return sizes
    }

    /// This process's rank and the group's endpoints, or nil when all ranks run in this process.
    func parsedAllReduceGroup() throws -> (rank: Int, endpoints: [String])? {
        guard let rank = allreduceRank else {
            guard allreduceEndpoints == nil else { throw ValidationError("--allreduce-endpoints needs --allreduce-rank") }
            return nil
        }
        guard allreduce else { throw ValidationError("--allreduce-rank needs --allreduce") }
        guard let list = allreduceEndpoints else { throw ValidationError("--allreduce-rank needs --allreduce-endpoints") }
        let endpoints = try list.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let endpoint = String(item)
            guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
                let port = Int(endpoint[endpoint.index(after: colon)...]), (1...65535).contains(port),
                endpoint.distance(from: endpoint.index(endpoint.startIndex, offsetBy: 6), to: colon) > 0
            else { throw ValidationError("--allreduce-endpoints: '\(endpoint)' is not tcp://HOST:PORT") }
            return endpoint
        }
        guard (2...AllReduce.maximumRanks).contains(endpoints.count) else {
            throw ValidationError("--allreduce-endpoints: \(endpoints.count) ranks, not 2...\(AllReduce.maximumRanks)")
        }
        guard Set(endpoints).count == endpoints.count else { throw ValidationError("--allreduce-endpoints: an address appears twice") }
        guard (0..<endpoints.count).contains(rank) else {
            throw ValidationError("--allreduce-rank: \(rank) is not a rank of \(endpoints.count) (0...\(endpoints.count - 1))")
        }
        return (rank, endpoints)
    }

    func runAllReduceRank() throws {
        guard let (rank, endpoints) = try parsedAllReduceGroup() else { return }
        let (_, algorithms) = try parsedAllReduce()
        try AllReduceRankBenchmark.run(
            rank: rank, endpoints: endpoints, elements: try parsedAllReduceElements(), algorithms: algorithms,
            iterations: steps
        ) { m in
            let seconds = m.seconds.map { String(format: "%.6f", $0) }.joined(separator: ",")
            print(
                "{\"elements\":\(m.elements),\"bytes\":\(m.elements * 8),\"workers\":\(endpoints.count),\"rank\":\(rank),"
                    + "\"algorithm\":\"\(m.algorithm.rawValue)\",\"seconds\":[\(seconds)]}")
            fflush(nil)
        }
    }
}
