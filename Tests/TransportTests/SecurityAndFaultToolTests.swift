import Foundation
import Testing
import Transport

struct FaultInjectorTests {
    @Test func parsesSpecsAndRejectsBadOnes() throws {
        let injector = try FaultInjector(spec: "seed=5,drop=0.1,corrupt=0.2")
        #expect(injector.seed == 5 && injector.rates[.drop] == 0.1 && injector.rates[.corrupt] == 0.2 && injector.rates[.delay] == nil)
        for bad in ["drop=0.1", "seed=x", "seed=1,drop=2", "seed=1,explode=0.1", "seed=1,drop"] {
            #expect(throws: TransportError.self, "\(bad)") { try FaultInjector(spec: bad) }
        }
    }

    /// The same seed gives the same faults, in the proportions asked for. (That a damaged frame
    /// fails to decode, so the receiver drops it, is WireMessageTests' part.)
    @Test func isDeterministicInTheProportionsAskedFor() throws {
        func outcomes(_ seed: UInt64) -> [Int] {
            let injector = FaultInjector(seed: seed, rates: [.drop: 0.1, .duplicate: 0.1, .truncate: 0.1, .corrupt: 0.1])
            let original = (0..<120).map { UInt8(truncatingIfNeeded: $0 &* 37) }
            return (0..<2000).map { _ in
                var frame = original
                let copies = injector.apply(to: &frame)
                let intact = frame == original
                return copies * 2 + (intact ? 1 : 0)
            }
        }
        let first = outcomes(3)
        #expect(first == outcomes(3))
        #expect(first != outcomes(4))
        let dropped = first.filter { $0 / 2 == 0 }.count, duplicated = first.filter { $0 / 2 == 2 }.count
        let damaged = first.filter { $0 % 2 == 0 }.count
        #expect((140...260).contains(dropped) && (140...260).contains(duplicated), "\(dropped) \(duplicated)")
        #expect((300...500).contains(damaged), "\(damaged)")  // truncated or corrupted (~20 %)
    }
}

struct CurveKeyTests {
    @Test func keyPairsRoundTripThroughFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("curve-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pair = try CurveKeyPair.generate()
        #expect(CurveKeys.isKey(pair.publicKey) && CurveKeys.isKey(pair.secretKey) && pair.publicKey != pair.secretKey)
        try pair.fileText.write(toFile: directory + "/a.key", atomically: true, encoding: .utf8)
        #expect(try CurveKeyPair.load(directory + "/a.key") == pair)
        #expect(try CurveKeys.publicKey(directory + "/a.key") == pair.publicKey)
        #expect(try CurveKeys.publicKey(pair.publicKey) == pair.publicKey)
        try "public-key \(pair.publicKey)\n".write(toFile: directory + "/b.key", atomically: true, encoding: .utf8)
        #expect(throws: TransportError.self) { try CurveKeyPair.load(directory + "/b.key") }
        #expect(throws: TransportError.self) { try CurveKeyPair.load(directory + "/missing.key") }
    }

    /// '#' is a Z85 character: it starts a comment only at the start of a word.
    @Test func authorizedKeysFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("authorized-\(UUID().uuidString)").path
        let keys = try (0..<20).map { _ in try CurveKeyPair.generate().publicKey }
        var text = "# workers\n\n"
        for (i, key) in keys.enumerated() { text += i % 2 == 0 ? "public-key \(key) worker\(i)\n" : "\(key)   # worker \(i)\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CurveKeys.authorized(path) == Set(keys))
        try "not-a-key\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TransportError.self) { try CurveKeys.authorized(path) }
        try "# nothing\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TransportError.self) { try CurveKeys.authorized(path) }
    }
}
