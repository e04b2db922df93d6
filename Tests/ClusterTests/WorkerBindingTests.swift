import Cluster
import Foundation
import TestSupport
import Testing

@Suite struct CPUListTests {
    @Test func listsParseAsTasksetWritesThem() throws {
        #expect(try CPUAffinity.parse("0") == [0])
        #expect(try CPUAffinity.parse("4,0-2") == [0, 1, 2, 4])
        #expect(CPUAffinity.format([0, 1, 2, 4, 6, 7]) == "0-2,4,6-7")
        #expect(try CPUAffinity.parse(CPUAffinity.format([3, 5, 6, 9])) == [3, 5, 6, 9])
    }

    @Test(arguments: ["", ",", "1-", "-1", "a", "1-2-3", "2-1", "1,1", "0-2,2", "100000"])
    func malformedListsAreRefused(spec: String) {
        #expect(throws: CPUAffinity.Problem.self) { try CPUAffinity.parse(spec) }
    }

    @Test func thisProcessMayUseSomeCPU() throws {
        let allowed = try CPUAffinity.allowedCPUs()
        #expect(!allowed.isEmpty && allowed == allowed.sorted())
    }
}

/// `train --bind-workers`: each local worker reports the CPU its threads were read back as bound
/// to, one CPU each in the order the launcher may use them, and the run keeps the bits of one process.
@Suite(.serialized) struct WorkerBindingTests {
    @Test(.enabled(if: realDataDirectory != nil && resnetDDPExecutable != nil, "needs real CIFAR-10 and the release build"))
    func boundWorkersUseTheirOwnCPUsAndKeepTheBits() throws {
        let allowed = try CPUAffinity.allowedCPUs()
        let workers = min(2, allowed.count)
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func train(_ extra: [String], _ name: String) throws -> (String, String) {
            let (status, output) = try ToolProcess.run(
                [
                    "train", "--depth", "8", "--iterations", "4", "--log-every", "2", "--out", directory + "/" + name,
                    "--data", realDataDirectory!,
                ] + extra, seconds: 120)
            try #require(status == 0, "\(output)")
            let finished = try #require(output.split(separator: "\n").first { $0.hasPrefix("finished 4 steps") }, "\(output)")
            return (String(try #require(finished.split(separator: " ").last)), output)
        }
        let (single, _) = try train(["--threads", "1"], "single")
        let (bound, output) = try train(["--workers", String(workers), "--worker-threads", "1", "--bind-workers"], "bound")
        #expect(bound == single, "parameters \(bound) bound, \(single) in one process")
        let reported = output.split(separator: "\n").filter { $0.hasPrefix("worker: threads bound to CPU ") }
            .compactMap { Int($0.dropFirst("worker: threads bound to CPU ".count).prefix { $0.isNumber }) }
        #expect(reported.sorted() == Array(allowed.prefix(workers)), "\(output)")
    }
}
