// swift-tools-version:6.0
import PackageDescription

// The kernels are compiled for one CPU: `native` (the build machine) unless
// RESNET_DDP_TARGET_CPU names another (e.g. `x86-64` for a portable binary,
// `znver4` for AVX-512 cluster nodes). Without it swiftc targets baseline SSE2
// and the SIMD16 convolutions run several times slower.
let targetCPU = Context.environment["RESNET_DDP_TARGET_CPU"] ?? "native"
// LLVM tunes Intel's AVX-512 CPUs to "prefer 256-bit" vectors for code it vectorizes itself: it
// then zeroed and copied the kernels' SIMD16 accumulator tuples in 256-bit halves, and every
// 512-bit reload of such a tuple stalled on store forwarding. Only the explicit SIMD16 code is
// AVX-512-heavy here, so there is no frequency reason to prefer 256 bits.
#if arch(x86_64)
let vectorWidthFlags = ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "-prefer-256-bit"]
#else
let vectorWidthFlags: [String] = []
#endif
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU] + vectorWidthFlags),
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

// The C helper that reports the compiled vector unit gets the same target CPU.
let featureFlags: [CSetting] = [.unsafeFlags(["-march=\(targetCPU)"]), .define("RDDP_TARGET_CPU", to: "\"\(targetCPU)\"")]

let package = Package(
    name: "resnet-ddp",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "resnet-ddp", targets: ["resnet-ddp"]),
        .executable(name: "netwire", targets: ["netwire"]),
        // For the libFuzzer package in Fuzz/ (scripts/fuzz), which builds it with sanitizers.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .target(name: "CPUFeatures", cSettings: featureFlags),
        .target(name: "CMaskBits"),
        .target(name: "TensorCore", dependencies: ["CPUFeatures", "CMaskBits"], swiftSettings: kernelFlags),
        .target(name: "Layers", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        .target(name: "Models", dependencies: ["Layers"]),
        .target(name: "CIFAR", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        // The one monotonic clock (and median) of the package, for Training, Transport and Cluster.
        .target(name: "Timing"),
        .target(name: "Training", dependencies: ["Layers", "Models", "CIFAR", "Timing"]),
        .systemLibrary(name: "CZMQ"),
        .target(name: "Transport", dependencies: ["CZMQ", "Timing"]),
        .target(name: "Collectives"),
        // sched_setaffinity for `worker --cpus` (the CPU_SET macros do not import into Swift).
        .target(name: "CAffinity"),
        .target(
            name: "Cluster",
            dependencies: ["Training", "Collectives", "Transport", "Layers", "TensorCore", "CIFAR", "Models", "Timing", "CAffinity"]),
        .executableTarget(
            name: "resnet-ddp",
            dependencies: [
                "Training", "Cluster", "Collectives", "Transport", "TensorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // netem's delay, jitter and rate in user space, for the simulated hosts of benchmarks and tests.
        .target(name: "CTun"),
        .target(name: "SimulatedNetwork"),
        .executableTarget(
            name: "netwire",
            dependencies: ["CTun", "SimulatedNetwork", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "FuzzTargets", dependencies: ["CIFAR", "Cluster", "Models", "Training", "Transport"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(
            name: "LayersTests", dependencies: ["Layers", "Models", "TensorCore", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Layers", "TensorCore", "TestSupport"]),
        .testTarget(name: "CIFARTests", dependencies: ["CIFAR", "TensorCore", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "SimulatedNetworkTests", dependencies: ["SimulatedNetwork"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "Cluster", "TensorCore", "Transport"]),
        .testTarget(name: "FaultToleranceTests", dependencies: ["Cluster", "Training", "TensorCore", "TestSupport", "Transport"]),
        .testTarget(name: "ClusterTests", dependencies: ["CIFAR", "Cluster", "FuzzTargets", "Training", "Transport", "TensorCore", "TestSupport"]),
        .testTarget(
            name: "TrainingTests", dependencies: ["Training", "Layers", "Models", "CIFAR", "TensorCore", "TestSupport"],
            resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
