import Foundation
import FuzzTargets

/// RESNET_DDP_FUZZ_TARGET names the target (`wire`, `control`, `checkpoint`, `cifar`,
/// `safetensors`); RESNET_DDP_FUZZ_WRITE_SEEDS=DIR writes its seed inputs there and exits.
nonisolated(unsafe) private var target = FuzzTarget.wire

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>>>) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    guard let name = environment["RESNET_DDP_FUZZ_TARGET"], let chosen = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("fuzz: set RESNET_DDP_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))\n".utf8))
        exit(2)
    }
    target = chosen
    if let directory = environment["RESNET_DDP_FUZZ_WRITE_SEEDS"] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (index, seed) in try chosen.seeds().enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: directory).appendingPathComponent("seed-\(index)"))
            }
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("fuzz: cannot write seeds to \(directory): \(error)\n".utf8))
            exit(1)
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    do {
        try target.run(input)
    } catch {
        // A finding: libFuzzer saves the input that crashed.
        fatalError("\(target.rawValue): \(error)")
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable target's entry point under the name `<target>_main`; this one
/// hands control to libFuzzer's driver (which calls the two functions above).
@_cdecl("fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { testOneInput($0, $1) }
}
