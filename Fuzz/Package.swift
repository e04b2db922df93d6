// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the decoders that read untrusted bytes (see Sources/FuzzTargets).
// Build and run with scripts/fuzz: it passes -sanitize=fuzzer,address and -parse-as-library,
// which this package needs (libFuzzer supplies `main`).
let package = Package(
    name: "resnet-ddp-fuzz",
    dependencies: [.package(name: "resnet-ddp", path: "..")],
    targets: [
        .executableTarget(name: "fuzz", dependencies: [.product(name: "FuzzTargets", package: "resnet-ddp")])
    ],
    swiftLanguageModes: [.v6]
)
