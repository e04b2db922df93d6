import Foundation
import Testing
import Training

@Suite struct CheckpointTests {
    /// A ResNet-8 checkpoint with made-up values (the decoder checks the counts against the net).
    private func sample() -> Checkpoint {
        let architecture = try! smallConfiguration(iterations: 50).architecture()
        return Checkpoint(
            configuration: smallConfiguration(iterations: 50), step: 42,
            parameters: (0..<architecture.parameterCount).map { Float($0) * 1e-3 - 2.5 },
            momentum: (0..<architecture.parameterCount).map { Float($0 % 7) * 0.5 },
            state: (0..<architecture.stateCount).map { Float($0) * 0.25 })
    }

    /// A file with `header` as its JSON header and `payload` after it, correctly checksummed.
    private func crafted(header: String, payload: Data) -> Data {
        var data = Data(Checkpoint.magic)
        withUnsafeBytes(of: Checkpoint.version.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(payload)
        withUnsafeBytes(of: fnv1a64(data).littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    /// Checksummed files with hostile contents are refused with the reason, never trapped on.
    @Test func craftedContentsAreRefused() throws {
        let valid = try sample().encoded()
        let headerLength = Int(valid.subdata(in: 12..<16).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        let header = String(decoding: valid.subdata(in: 16..<(16 + headerLength)), as: UTF8.self)
        let payload = valid.subdata(in: (16 + headerLength)..<(valid.count - 8))
        #expect(try Checkpoint.decode(crafted(header: header, payload: payload), source: "x") == sample())
        func refusal(_ changed: String, _ payload: Data) -> String {
            do {
                _ = try Checkpoint.decode(crafted(header: changed, payload: payload), source: "c.ckpt")
                return "accepted"
            } catch { return "\(error)" }
        }
        let architecture = try smallConfiguration(iterations: 50).architecture()
        let huge = String(1 << 61)
        #expect(
            refusal(
                header.replacingOccurrences(of: "\"parameterCount\":\(architecture.parameterCount)", with: "\"parameterCount\":\(huge)"),
                payload
            ).contains("payload size does not match"))
        #expect(
            refusal(
                header.replacingOccurrences(of: "\"stateCount\":\(architecture.stateCount)", with: "\"stateCount\":-4"),
                payload
            ).contains("payload size does not match"))
        #expect(refusal(header.replacingOccurrences(of: "\"step\":42", with: "\"step\":-1"), payload).contains("negative step"))
        #expect(refusal(header.replacingOccurrences(of: "\"step\":42", with: "\"step\":51"), payload).contains("past the run's 50"))
        #expect(refusal(header.replacingOccurrences(of: "\"depth\":8", with: "\"depth\":14"), payload).contains("do not fit ResNet-14"))
        #expect(refusal(header.replacingOccurrences(of: "\"depth\":8", with: "\"depth\":9"), payload).contains("configuration is invalid"))
        // Counts moved between the arrays keep the total size but not the net's shape.
        let moved = header.replacingOccurrences(
            of: "\"stateCount\":\(architecture.stateCount)", with: "\"stateCount\":\(architecture.stateCount - 1)"
        )
        .replacingOccurrences(of: "\"momentumCount\":\(architecture.parameterCount)", with: "\"momentumCount\":\(architecture.parameterCount + 1)")
        #expect(refusal(moved, payload).contains("do not fit ResNet-8"))
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
        newer[8] = 9  // version field
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

    /// A real full disk (a 4 MiB tmpfs, so root only): overwriting an existing checkpoint with
    /// one that does not fit fails with the reason, and the file already saved is untouched, with
    /// no temporary file left beside it.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullDiskLeavesTheSavedCheckpointIntact() throws {
        let mountPoint = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let mount = try ToolProcess.run(["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint], executable: "/bin/mount", seconds: 30)
        try #require(mount.status == 0, "mount: \(mount.output)")
        defer { _ = try? ToolProcess.run([mountPoint], executable: "/bin/umount", seconds: 30) }
        let directory = CheckpointDirectory(runDirectory: mountPoint)
        let saved = try directory.write(sample(), keep: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: saved))
        let tooLarge = Data(repeating: 7, count: 8 << 20)
        #expect {
            try atomicWrite(tooLarge, to: saved)
        } throws: { error in
            "\(error)".contains(saved) && "\(error)".contains(String(cString: strerror(ENOSPC)))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: saved)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [(saved as NSString).lastPathComponent])
        #expect(try CheckpointDirectory(runDirectory: mountPoint).latestValid().checkpoint == sample())
    }

    /// The word-wise FNV-1a reads 8-byte little-endian words, then the tail byte by byte, and
    /// every byte changes it (a hand-computed reference on 13 bytes).
    @Test func wordWiseFNVHashesWordsThenTheTail() {
        let bytes: [UInt8] = (0..<13).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 5) }
        var expected: UInt64 = 0xCBF2_9CE4_8422_2325
        var word: UInt64 = 0
        for (index, byte) in bytes[0..<8].enumerated() { word |= UInt64(byte) << (8 * UInt64(index)) }
        expected = (expected ^ word) &* 0x0000_0100_0000_01B3
        for byte in bytes[8...] { expected = (expected ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        var hash = FNV1a64()
        bytes.withUnsafeBytes { hash.combineWords($0) }
        #expect(hash.value == expected)
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 1
            var other = FNV1a64()
            changed.withUnsafeBytes { other.combineWords($0) }
            #expect(other.value != expected, "byte \(index)")
        }
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

@Suite struct RunDirectoryLockTests {
    @Test func secondLockOnTheSameDirectoryIsRefusedWithTheHoldersPid() throws {
        let directory = temporaryDirectory() + "/run"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try RunDirectoryLock(runDirectory: directory)
        #expect(throws: RunDirectoryLockError.held(directory, pid: String(getpid()))) { try RunDirectoryLock(runDirectory: directory) }
        first.release()
        let again = try RunDirectoryLock(runDirectory: directory)
        again.release()
    }
}
