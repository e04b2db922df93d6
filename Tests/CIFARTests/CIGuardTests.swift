import Foundation
import TestSupport
import Testing

/// Under CI nothing that needs the real data or the release binary may be skipped: this says
/// plainly what is missing (the tests that need it fail too, with their own errors).
@Suite struct CIGuardTests {
    @Test(.enabled(if: requiredByCI, "only under CI"))
    func realDataAndReleaseBinaryArePresent() {
        let data = realDataDirectory.map { URL(fileURLWithPath: $0).appendingPathComponent("data_batch_1.bin").path }
        #expect(
            data.map { FileManager.default.fileExists(atPath: $0) } == true,
            "CI: real CIFAR-10 missing at \(data ?? "?"): scripts/fetch-cifar10 failed")
        #expect(
            resnetDDPExecutable.map { FileManager.default.isExecutableFile(atPath: $0) } == true,
            "CI: release binary missing at \(resnetDDPExecutable ?? "?")")
    }
}
