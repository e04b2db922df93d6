import Foundation
import Testing
import Training

@Suite struct CheckpointTests {
    private func sample() -> Checkpoint {
        Checkpoint(configuration: smallConfiguration(iterations: 10), step: 42, parameters: [1, -2.5, 3e-7],
                   momentum: [0, 0.5, -1], state: [0.25, 4])
    }

    @Test func roundTrip() throws {
        let data = try sample().encoded()
        #expect(try Checkpoint.decode(data, source: "x") == sample())
    }

    @Test func corruptionIsDetected() throws {
        let data = try sample().encoded()
        var flipped = data
        flipped[data.count / 2] ^= 0x10
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(flipped, source: "x") }
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(data.prefix(data.count - 3), source: "x") }
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(Data("hello".utf8), source: "x") }
        var foreign = data
        foreign[0] = UInt8(ascii: "X")
        do {
            _ = try Checkpoint.decode(foreign, source: "f.ckpt")
            Issue.record("foreign file accepted")
        } catch {
            #expect("\(error)".contains("f.ckpt") && "\(error)".contains("magic"))
        }
        var newer = data
        newer[8] = 9   // version field
        do {
            _ = try Checkpoint.decode(newer, source: "n.ckpt")
            Issue.record("unknown version accepted")
        } catch {
            #expect("\(error)".contains("version 9"))
        }
    }

    @Test func corruptLatestFallsBackToThePreviousOne() throws {
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let directory = CheckpointDirectory(runDirectory: run)
        var checkpoint = sample()
        for step in [10, 20, 30, 40] {
            checkpoint.step = step
            try directory.write(checkpoint, keep: 3)
        }
        #expect(directory.files().map { ($0 as NSString).lastPathComponent } == ["step-00000040.ckpt", "step-00000030.ckpt", "step-00000020.ckpt"])
        // Damage the newest: the previous one is used, with a warning naming the damaged file.
        let newest = directory.files()[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        bytes[bytes.count - 20] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: newest))
        let found = try directory.latestValid()
        #expect(found.checkpoint.step == 30)
        #expect(found.warnings.count == 1 && found.warnings[0].contains("step-00000040.ckpt"))
    }

    @Test func failedWriteLeavesExistingFilesIntact() throws {
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let directory = CheckpointDirectory(runDirectory: run)
        try directory.write(sample(), keep: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.files()[0]))
        // Writing into a directory that cannot be written: the error names the file, nothing changes.
        #expect(throws: CheckpointError.self) { try atomicWrite(Data([1, 2, 3]), to: "/proc/resnet-ddp-no-such/x.ckpt") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.files()[0])) == before)
    }
}

@Suite struct TensorBoardLogTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(crc32cCheckValue() == 0xE306_9283)
    }

    /// The first record of a new file is the version event, framed with valid lengths.
    @Test func recordsAreFramed() throws {
        let run = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let log = try TensorBoardLog(runDirectory: run)
        try log.scalars(["train_loss": 2.5, "lr": 0.1], step: 7)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log.path)))
        let first = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        #expect(String(decoding: bytes[12..<(12 + first)], as: UTF8.self).contains("brain.Event:2"))
        let secondOffset = 12 + first + 4
        let second = Int(bytes[secondOffset...].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        #expect(secondOffset + 12 + second + 4 == bytes.count)
        #expect(String(decoding: bytes[(secondOffset + 12)...], as: UTF8.self).contains("train_loss"))
    }
}
